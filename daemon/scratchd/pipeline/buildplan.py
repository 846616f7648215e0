"""The compiled :class:`BuildPlan`: everything the runner needs, nothing of YAML.

:func:`scratchd.pipeline.compile.compile_build` makes one from a wercker.yml,
the repository's settings, its secrets and the commit. The runner imports
these types and nothing else of ``pipeline``: step ids, kinds, option lists
and ``step.yml`` files are resolved before a build starts, so a backend or a
step implementation never parses anything (woodpecker's frontend/backend
split). Option values stay *unexpanded* text: ``$VAR`` needs the step's
environment, which only exists at run time (backend paths, earlier steps).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scratchd.models import CommitInfo
from scratchd.pipeline.plan import DEFAULT_COMMAND_TIMEOUT, DEFAULT_NO_RESPONSE_TIMEOUT, Box

__all__ = [
    "Box",
    "BuildPlan",
    "DockerBuildStep",
    "DockerPushStep",
    "LocalStep",
    "PipelinePlan",
    "PlanStep",
    "ScratchPushStep",
    "ScriptStep",
    "SkippedStep",
]


_TRUE = frozenset({"true", "yes", "on", "1"})


def marked_public(options: Iterable[tuple[str, str]], option: str) -> bool:
    """``public-env: true`` / ``public-labels: true`` among a step's options."""
    return any(k == f"public-{option}" and v.strip().lower() in _TRUE for k, v in options)


@dataclass(frozen=True)
class PlanStep:
    """What every compiled step has: a display name, its id (for messages), options.

    ``options`` are the wercker.yml options in file order, validated against
    the step's known options at compile time; ``secret_options`` names those
    whose values must be masked once expanded.
    """

    name: str
    id: str
    options: tuple[tuple[str, str], ...] = ()
    secret_options: frozenset[str] = frozenset()
    line: int = 0

    def prop(self, key: str, default: str = "") -> str:
        for k, v in self.options:
            if k == key:
                return v
        return default

    def is_secret(self, key: str) -> bool:
        return key in self.secret_options or key.endswith("-password")

    def is_public(self, option: str) -> bool:
        """Whether ``public-<option>: true`` lets ``option`` carry secrets into an image."""
        return marked_public(self.options, option)

    @property
    def where(self) -> str:
        """``wercker.yml:LINE: `` for messages about this step (empty when unknown)."""
        return f"wercker.yml:{self.line}: " if self.line else ""


@dataclass(frozen=True)
class ScriptStep(PlanStep):
    """Inline shell; ``code`` already has ``set -e`` unless it starts with ``#!``."""

    code: str = ""
    cwd: str = ""


@dataclass(frozen=True)
class ScratchPushStep(PlanStep):
    """``internal/docker-scratch-push``: bake ``$WERCKER_ROOT`` and push it."""


@dataclass(frozen=True)
class DockerPushStep(PlanStep):
    """``internal/docker-push``: commit the box container (or push a built image)."""


@dataclass(frozen=True)
class DockerBuildStep(PlanStep):
    """``internal/docker-build``: build a Dockerfile with the engine."""


@dataclass(frozen=True)
class LocalStep(PlanStep):
    """A step directory of the repository with ``run.sh``, its ``step.yml`` already read.

    ``directory`` is absolute, inside the exported source. ``defaults`` are
    step.yml's ``WERCKER_<STEP>_<PROP>`` defaults (literal); ``properties``
    map such a variable to the option that sets it (expanded at run time).
    """

    directory: Path = Path()
    defaults: tuple[tuple[str, str], ...] = ()
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SkippedStep(PlanStep):
    """A retired wercker internal step: logged with its reason, never run."""

    reason: str = ""


@dataclass(frozen=True)
class PipelinePlan:
    """One pipeline to run: its box, services, resolved environment and steps.

    ``env`` holds what is known before the build starts (git facts, ids,
    ``BUILD``/``DEPLOY``, user env and secrets); directory variables come
    from the backend at run time.
    """

    name: str
    steps: tuple[PlanStep, ...] = ()
    after_steps: tuple[PlanStep, ...] = ()
    box: Box | None = None
    services: tuple[Box, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: Whose output this pipeline works on: None the pipeline before it (the
    #: commit for the first), "" the commit, else that pipeline's (workflows' requires).
    source_from: str | None = None
    #: A workflow fan-in: (directory, pipeline) pairs; the source then holds each
    #: pipeline's output in that directory, and ``source_from`` is not used.
    fan_in: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class BuildPlan:
    """A whole build: the pipelines to run in order and where to run them.

    ``source`` is the exported commit tree (the build's ``$WERCKER_ROOT``),
    ``work_dir`` a fresh directory for the pipeline dirs, ``cache_dir``
    persists per repository. ``secrets`` are the revealed values the build's
    masker must know (see :meth:`secret_values`).
    """

    path: str
    commit: CommitInfo
    source: Path
    work_dir: Path
    cache_dir: Path
    pipelines: tuple[PipelinePlan, ...] = ()
    executor: str = "docker"  # passed to the backend factory: "docker" or "host"
    build_id: str = ""
    run_id: str = ""
    started: float = 0.0
    source_dir: str = ""
    command_timeout: int = DEFAULT_COMMAND_TIMEOUT
    no_response_timeout: int = DEFAULT_NO_RESPONSE_TIMEOUT
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: SHA-256 of the wercker.yml text compiled (provenance records it); "" if not known.
    pipeline_file_sha256: str = ""

    def secret_values(self) -> tuple[str, ...]:
        """Every value to mask: secrets, and password options and box passwords
        expanded against the build's env (so one arriving through ``--env`` is
        masked even in lines printed before the step that uses it)."""
        from scratchd.expand import expand

        values = list(self.secrets)
        for pipeline in self.pipelines:
            for step in (*pipeline.steps, *pipeline.after_steps):
                values += [expand(v, pipeline.env) for k, v in step.options if step.is_secret(k)]
            for box in self._boxes(pipeline):
                if box.password:
                    values.append(expand(box.password, pipeline.env))
        return tuple(dict.fromkeys(v for v in values if v))

    @staticmethod
    def _boxes(pipeline: PipelinePlan) -> Iterator[Box]:
        yield from (b for b in (pipeline.box, *pipeline.services) if b is not None)
