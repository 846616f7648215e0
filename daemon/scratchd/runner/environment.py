"""The WERCKER_* environment, built the way wercker's core/environment.go did.

Three layers, each a plain dict so the executor can merge them in order
(later wins): the pipeline's environment (git facts, ids, ``BUILD=true``),
the directory variables as the backend sees them (host paths or
``/pipeline/...`` inside a container), then per-step variables
(``WERCKER_STEP_*``, a local step's ``WERCKER_<STEP>_<PROP>`` properties,
and for after-steps ``WERCKER_RESULT``). User ``--env`` values and secrets
are applied on top of the pipeline layer but never override the
``WERCKER_*`` names wercker itself set.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from types import MappingProxyType

from scratchd.models import CommitInfo

#: The directory variables a backend's ``env_paths()`` provides.
DIR_VARS = (
    "WERCKER_ROOT",
    "WERCKER_SOURCE_DIR",
    "WERCKER_OUTPUT_DIR",
    "WERCKER_CACHE_DIR",
    "WERCKER_PIPELINE_DIR",
    "WERCKER_REPORT_DIR",
)


def pipeline_env(
    commit: CommitInfo,
    pipeline: str,
    *,
    run_id: str,
    pipeline_id: str,
    started: float | None = None,
    extra: Mapping[str, str] = MappingProxyType({}),
) -> dict[str, str]:
    """The environment every step of ``pipeline`` starts from.

    ``build`` gets ``BUILD=true`` and ``WERCKER_BUILD_ID``; any other
    pipeline is a deploy (``DEPLOY=true``, ``WERCKER_DEPLOY_ID``,
    ``WERCKER_DEPLOYTARGET_NAME``) as in wercker, where every pipeline after
    the first ran as a deploy target.
    """
    env = dict(extra)
    env.update(
        {
            "WERCKER": "true",
            "CI": "true",
            "WERCKER_RUN_ID": run_id,
            "WERCKER_PIPELINE_NAME": pipeline,
            "WERCKER_MAIN_PIPELINE_STARTED": str(int(started or time.time())),
            "WERCKER_GIT_DOMAIN": commit.domain,
            "WERCKER_GIT_OWNER": commit.owner,
            "WERCKER_GIT_REPOSITORY": commit.repository or commit.repo,
            "WERCKER_GIT_BRANCH": commit.branch,
            "WERCKER_GIT_COMMIT": commit.sha,
            "WERCKER_APPLICATION_NAME": commit.repository or commit.repo,
            "WERCKER_APPLICATION_OWNER_NAME": commit.owner,
            "WERCKER_STARTED_BY": "scratchd",
        }
    )
    if pipeline == "build":
        env.update({"BUILD": "true", "WERCKER_BUILD_ID": pipeline_id})
    else:
        env.update(
            {
                "DEPLOY": "true",
                "WERCKER_DEPLOY_ID": pipeline_id,
                "WERCKER_DEPLOYTARGET_NAME": pipeline,
            }
        )
    return env


def step_env(step_id: str, step_name: str, paths: Mapping[str, str]) -> dict[str, str]:
    """``WERCKER_STEP_*`` and the report files wercker gave every step."""
    report = paths.get("WERCKER_REPORT_DIR", "")
    base = f"{report}/{step_id}" if report else ""
    return {
        "WERCKER_STEP_ID": step_id,
        "WERCKER_STEP_NAME": step_name,
        "WERCKER_REPORT_NUMBERS_FILE": f"{base}/numbers.ini" if base else "",
        "WERCKER_REPORT_MESSAGE_FILE": f"{base}/message.txt" if base else "",
        "WERCKER_REPORT_ARTIFACTS_DIR": f"{base}/artifacts" if base else "",
    }


def after_env(result: str, failed_step: str = "", failed_message: str = "") -> dict[str, str]:
    """What after-steps learn about the pipeline they follow."""
    return {
        "WERCKER_RESULT": result,
        "WERCKER_FAILED_STEP_DISPLAY_NAME": failed_step,
        "WERCKER_FAILED_STEP_MESSAGE": failed_message,
    }


def property_var(step_name: str, prop: str) -> str:
    """``slack-notify`` + ``webhook-url`` → ``WERCKER_SLACK_NOTIFY_WEBHOOK_URL``.

    wercker upper-cased ``WERCKER_<step name>_<property>`` and replaced
    dashes with underscores; anything else not valid in a shell name
    becomes an underscore here too, so the variable is always usable.
    """
    raw = f"WERCKER_{step_name}_{prop}".upper()
    return re.sub(r"[^A-Z0-9_]", "_", raw)
