"""Local steps: source a vendored step directory's ``run.sh`` in the step's shell.

The compiler found the directory and read its ``step.yml``
(:mod:`scratchd.pipeline.localstep`); here the options become
``WERCKER_<NAME>_<OPTION>`` variables (``step.yml`` defaults first) and
``run.sh`` is sourced with wercker's shell functions (``success``, ``fail``,
``warn``, ``info``, ``debug``, ``setMessage``) defined.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from scratchd.pipeline.buildplan import LocalStep
from scratchd.runner.steps import StepContext, StepOutcome

WERCKER_FUNCTIONS = """\
success() { echo "success: $*"; }
info() { echo "info: $*"; }
debug() { echo "debug: $*"; }
warn() { echo "warning: $*" >&2; }
setMessage() { [ -n "$WERCKER_REPORT_MESSAGE_FILE" ] && \
mkdir -p "$(dirname "$WERCKER_REPORT_MESSAGE_FILE")" && \
printf '%s\\n' "$*" > "$WERCKER_REPORT_MESSAGE_FILE"; return 0; }
fail() { setMessage "$*"; echo "failed: $*" >&2; exit 1; }
"""

# A private temp dir per step run, removed when the step's shell exits.
RUN = """\
WERCKER_STEP_TEMP="$(mktemp -d)" || exit 1
export WERCKER_STEP_TEMP
trap 'rm -rf "$WERCKER_STEP_TEMP"' EXIT
. "$WERCKER_STEP_ROOT/run.sh" < /dev/null
"""


def run(ctx: StepContext) -> StepOutcome:
    """Source ``run.sh`` with the step's options as ``WERCKER_<NAME>_<OPTION>``."""
    step = ctx.step
    assert isinstance(step, LocalStep)
    staged, step_root = _visible_dir(ctx, step.directory)
    try:
        env = {"WERCKER_STEP_ROOT": step_root, **_property_env(ctx, step)}
        ctx.run_script(WERCKER_FUNCTIONS + RUN, env=env)
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    return StepOutcome()


def _property_env(ctx: StepContext, step: LocalStep) -> dict[str, str]:
    """Defaults from step.yml, then the options given in wercker.yml ($VAR expanded)."""
    env = dict(step.defaults)
    for var, option in step.properties:
        env[var] = ctx.prop(option)
    return env


def _visible_dir(ctx: StepContext, directory: Path) -> tuple[Path | None, str]:
    """The step directory as the backend sees it, staged into the cache if needed.

    In ``build`` the repository is the pipeline's root, which every backend
    sees; a ``deploy`` works on the build's output, so the step is copied
    into the cache dir (also visible) for the length of the step. A backend
    that does not share this machine's disk (an engine on another host)
    copies it in itself (``stage_dir``).
    """
    root = ctx.job.dirs.root.resolve()
    if root == directory or root in directory.parents:
        return None, _join(ctx.env["WERCKER_ROOT"], directory.relative_to(root))
    stage = getattr(ctx.backend, "stage_dir", None)
    if stage is not None:
        return None, stage(directory, ctx.step_id)
    staged = ctx.job.dirs.cache / ".scratchd-steps" / ctx.step_id
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(directory, staged, symlinks=True)
    return staged, _join(ctx.env["WERCKER_CACHE_DIR"], staged.relative_to(ctx.job.dirs.cache))


def _join(base: str, rel: Path) -> str:
    return base.rstrip("/") + ("/" + rel.as_posix() if rel.parts else "")
