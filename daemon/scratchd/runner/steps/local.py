"""Local steps: a directory with ``run.sh`` (and optional ``step.yml``) in the repository.

wercker fetched steps from its registry; that registry is gone, so scratchd
runs only steps vendored into the repository, named either
``- name "file://path/to/dir"`` / ``- file://path/to/dir`` or by a
directory ``.scratchd/steps/<name>/``. Options become
``WERCKER_<NAME>_<OPTION>`` variables (``step.yml`` ``properties`` give
defaults) and ``run.sh`` is sourced in the step's shell with wercker's
shell functions (``success``, ``fail``, ``warn``, ``info``, ``debug``,
``setMessage``) defined.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from scratchd.errors import PipelineError
from scratchd.pipeline.steps import COMMON_OPTIONS, StepRef, vendored_dir
from scratchd.runner.environment import property_var
from scratchd.runner.steps import StepContext, StepOutcome

# Options every step has that are not passed to run.sh.
_RESERVED = COMMON_OPTIONS | {"code", "id"}

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


def find_step(ref: StepRef, repo_source: Path) -> Path | None:
    """The directory of a ``file://`` or vendored step, or None when there is none."""
    if ref.url.startswith("file://"):
        return _inside(repo_source, ref.url.removeprefix("file://"), ref.identifier)
    directory = repo_source / vendored_dir(ref)
    return directory if (directory / "run.sh").is_file() else None


def _inside(repo_source: Path, rel: str, step_id: str) -> Path:
    if rel.startswith("/"):
        raise PipelineError(
            f"local step {step_id!r}: file://{rel} must be relative to the repository"
        )
    root = repo_source.resolve()
    directory = (root / rel).resolve()
    if directory != root and root not in directory.parents:
        raise PipelineError(f"local step {step_id!r}: {rel!r} is outside the repository")
    if not (directory / "run.sh").is_file():
        raise PipelineError(f"local step {step_id!r}: no run.sh in {rel!r} of the repository")
    return directory


def run(ctx: StepContext, name: str, directory: Path) -> StepOutcome:
    """Source ``run.sh`` with the step's options as ``WERCKER_<NAME>_<OPTION>``."""
    meta = _read_step_yml(directory, ctx.step.id)
    staged, step_root = _visible_dir(ctx, directory)
    try:
        env = {"WERCKER_STEP_ROOT": step_root, **_property_env(ctx, name, meta)}
        ctx.run_script(WERCKER_FUNCTIONS + RUN, env=env)
    finally:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
    return StepOutcome()


def _read_step_yml(directory: Path, step_id: str) -> dict:
    for candidate in ("step.yml", "wercker-step.yml"):
        path = directory / candidate
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = f":{mark.line + 1}" if mark else ""
                raise PipelineError(f"{step_id}: {candidate}{line}: invalid YAML") from None
            if not isinstance(data, dict):
                raise PipelineError(f"{step_id}: {candidate}: must be a mapping")
            return data
    return {}


def _property_env(ctx: StepContext, name: str, meta: dict) -> dict[str, str]:
    """Defaults from step.yml, then the options given in wercker.yml."""
    env: dict[str, str] = {}
    properties = meta.get("properties") or {}
    if isinstance(properties, dict):
        for prop, spec in properties.items():
            default = spec.get("default") if isinstance(spec, dict) else None
            if default is not None:
                env[property_var(name, str(prop))] = _text(default)
    for prop, _ in ctx.step.properties:
        if prop not in _RESERVED:
            env[property_var(name, prop)] = ctx.prop(prop)
    return env


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _visible_dir(ctx: StepContext, directory: Path) -> tuple[Path | None, str]:
    """The step directory as the backend sees it, staged into the cache if needed.

    In ``build`` the repository is the pipeline's root, which every backend
    sees; a ``deploy`` works on the build's output, so the step is copied
    into the cache dir (also visible) for the length of the step.
    """
    root = ctx.job.dirs.root.resolve()
    if root == directory or root in directory.parents:
        return None, _join(ctx.env["WERCKER_ROOT"], directory.relative_to(root))
    staged = ctx.job.dirs.cache / ".scratchd-steps" / ctx.step_id
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(directory, staged, symlinks=True)
    return staged, _join(ctx.env["WERCKER_CACHE_DIR"], staged.relative_to(ctx.job.dirs.cache))


def _join(base: str, rel: Path) -> str:
    return base.rstrip("/") + ("/" + rel.as_posix() if rel.parts else "")
