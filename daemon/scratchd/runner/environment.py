"""The run-time part of the WERCKER_* environment (wercker's core/environment.go).

The pipeline layer (git facts, ids, ``BUILD=true``) and a local step's
property variables are resolved at compile time
(:mod:`scratchd.pipeline.environment`); what is left here needs the run.

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

from collections.abc import Mapping

#: The directory variables a backend's ``env_paths()`` provides.
DIR_VARS = (
    "WERCKER_ROOT",
    "WERCKER_SOURCE_DIR",
    "WERCKER_OUTPUT_DIR",
    "WERCKER_CACHE_DIR",
    "WERCKER_PIPELINE_DIR",
    "WERCKER_REPORT_DIR",
)


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
