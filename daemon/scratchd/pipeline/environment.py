"""The compile-time part of the WERCKER_* environment (wercker's core/environment.go).

:func:`pipeline_env` is what every step of a pipeline starts from;
:func:`property_var` names a local step's ``WERCKER_<STEP>_<PROP>``
variables. User ``--env`` values and secrets go under the ``WERCKER_*``
names wercker itself set, never over them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from types import MappingProxyType

from scratchd.models import CommitInfo


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


def property_var(step_name: str, prop: str) -> str:
    """``slack-notify`` + ``webhook-url`` → ``WERCKER_SLACK_NOTIFY_WEBHOOK_URL``.

    wercker upper-cased ``WERCKER_<step name>_<property>`` and replaced
    dashes with underscores; anything else not valid in a shell name
    becomes an underscore here too, so the variable is always usable.
    """
    raw = f"WERCKER_{step_name}_{prop}".upper()
    return re.sub(r"[^A-Z0-9_]", "_", raw)
