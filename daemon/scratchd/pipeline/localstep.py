"""Local steps at compile time: find the step directory, read its ``step.yml``.

wercker fetched steps from its registry; that registry is gone, so scratchd
runs only steps vendored into the repository, named either
``- name "file://path/to/dir"`` / ``- file://path/to/dir`` or by a
directory ``.scratchd/steps/<name>/``. Reading ``step.yml`` here (not in
the runner) means a broken step file fails the build before any box starts
and the runner never sees YAML.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scratchd.errors import PipelineError
from scratchd.pipeline.buildplan import LocalStep
from scratchd.pipeline.environment import property_var
from scratchd.pipeline.steps import COMMON_OPTIONS, StepRef, vendored_dir

# Options every step has that are not passed to run.sh.
_RESERVED = COMMON_OPTIONS | {"code", "id"}


def local_step(ref: StepRef, source: Path, common: dict[str, Any]) -> LocalStep:
    """The typed step for a ``file://`` or vendored step directory of ``source``."""
    directory = find_step(ref, source)
    if directory is None:
        raise PipelineError(unknown_step_message(ref.identifier, ref.name))
    meta = _read_step_yml(directory, ref.identifier)
    options = common["options"]
    return LocalStep(
        **common,
        directory=directory,
        defaults=_defaults(ref.name, meta),
        properties=tuple(
            (property_var(ref.name, key), key) for key, _ in options if key not in _RESERVED
        ),
    )


def find_step(ref: StepRef, source: Path) -> Path | None:
    """The directory of a ``file://`` or vendored step, or None when there is none."""
    if ref.url.startswith("file://"):
        return _inside(source, ref.url.removeprefix("file://"), ref.identifier)
    directory = source / vendored_dir(ref)
    return directory.resolve() if (directory / "run.sh").is_file() else None


def unknown_step_message(step_id: str, name: str) -> str:
    """Registry steps are gone with wercker's registry: say how to vendor them."""
    return (
        f"step {step_id!r} is not available: wercker's step registry is gone. "
        f"Vendor the step: copy its run.sh (and step.yml) into .scratchd/steps/{name}/ "
        f"in the repository, or reference a directory with "
        f"'- {name} \"file://path/to/step\"'"
    )


def _inside(source: Path, rel: str, step_id: str) -> Path:
    if rel.startswith("/"):
        raise PipelineError(
            f"local step {step_id!r}: file://{rel} must be relative to the repository"
        )
    root = source.resolve()
    directory = (root / rel).resolve()
    if directory != root and root not in directory.parents:
        raise PipelineError(f"local step {step_id!r}: {rel!r} is outside the repository")
    if not (directory / "run.sh").is_file():
        raise PipelineError(f"local step {step_id!r}: no run.sh in {rel!r} of the repository")
    return directory


def _read_step_yml(directory: Path, step_id: str) -> dict[str, Any]:
    for candidate in ("step.yml", "wercker-step.yml"):
        path = directory / candidate
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                mark = getattr(exc, "problem_mark", None)
                line = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
                raise PipelineError(f"{step_id}: {candidate}{line}: invalid YAML") from None
            if not isinstance(data, dict):
                raise PipelineError(f"{step_id}: {candidate}: must be a mapping")
            return data
    return {}


def _defaults(name: str, meta: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """``step.yml`` ``properties`` defaults as ``WERCKER_<STEP>_<PROP>`` (literal text)."""
    properties = meta.get("properties") or {}
    if not isinstance(properties, dict):
        return ()
    out = []
    for prop, spec in properties.items():
        default = spec.get("default") if isinstance(spec, dict) else None
        if default is not None:
            out.append((property_var(name, str(prop)), _text(default)))
    return tuple(out)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
