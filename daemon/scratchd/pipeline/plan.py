"""The typed Plan a wercker.yml parses to: what ``scratchd lint`` and the compiler read.

The runner does not execute this: :mod:`scratchd.pipeline.compile` resolves
it (with the repository's settings, secrets and commit) into a
:class:`~scratchd.pipeline.buildplan.BuildPlan`. Only :class:`Box` is
shared with the runner. Property values are kept *unexpanded*.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scratchd.pipeline.workflows import Workflow

DEFAULT_COMMAND_TIMEOUT = 25 * 60  # seconds; wercker's 25 minutes
DEFAULT_NO_RESPONSE_TIMEOUT = 5 * 60  # seconds; wercker's 5 minutes


@dataclass(frozen=True)
class Box:
    """A container image to run steps (or a service) in.

    ``id`` may carry its own tag (``golang:1.22``); ``tag`` from the map form
    wins when set. ``password`` is a raw (possibly ``$VAR``) string.
    """

    id: str
    tag: str = ""
    cmd: str = ""
    entrypoint: str = ""
    env: tuple[tuple[str, str], ...] = ()
    username: str = ""
    password: str = ""
    registry: str = ""
    name: str = ""  # services only: the host name other containers use
    ports: tuple[str, ...] = ()  # wercker's box/service ``ports`` list, as written
    volumes: str = ""  # wercker's ``volumes`` (space or comma separated)
    url: str = ""  # ``file://`` service boxes; not run by scratchd (lint warns)
    line: int = 0

    @property
    def image(self) -> str:
        """``repo:tag`` reference to pull or run."""
        if self.tag:
            return f"{self.id.rsplit(':', 1)[0] if _has_tag(self.id) else self.id}:{self.tag}"
        return self.id if _has_tag(self.id) or "@" in self.id else f"{self.id}:latest"


def _has_tag(ref: str) -> bool:
    last = ref.rsplit("/", 1)[-1]
    return ":" in last


@dataclass(frozen=True)
class Step:
    """One step: ``script``, ``internal/...``, or a local step directory.

    ``properties`` keeps every option as text in file order. For ``script``
    steps ``code`` already has ``set -e`` prepended unless it starts with
    ``#!``. ``line`` points into the wercker.yml for error messages.
    """

    id: str
    name: str
    properties: tuple[tuple[str, str], ...] = ()
    code: str = ""
    cwd: str = ""
    line: int = 0
    column: int = 0
    #: "script", "internal", "local" (``name "file://path"``), "registry" (wercker's
    #: retired step registry: the compiler looks in ``.scratchd/steps/<name>/``) or
    #: "retired" (an internal step that does not run here). See pipeline.steps.
    kind: str = ""
    url: str = ""  # the quoted part of ``name "file://path"``

    def prop(self, key: str, default: str = "") -> str:
        for k, v in self.properties:
            if k == key:
                return v
        return default


@dataclass(frozen=True)
class Pipeline:
    """A named pipeline (``build``, ``deploy``, ``staging`` ...)."""

    name: str
    steps: tuple[Step, ...] = ()
    after_steps: tuple[Step, ...] = ()
    box: Box | None = None  # None: inherit the plan's box
    services: tuple[Box, ...] = ()  # empty: inherit the plan's services
    base_path: str = ""  # wercker's ``base-path`` (trailing slash removed)
    docker: bool = False  # wercker's ``docker: true`` (wants a Docker daemon)
    #: Old-style deploy targets: extra keys of a pipeline holding step lists.
    targets: tuple[tuple[str, tuple[Step, ...]], ...] = ()
    line: int = 0


@dataclass(frozen=True)
class Plan:
    """A whole wercker.yml: global settings plus its pipelines by name."""

    path: str
    pipelines: tuple[Pipeline, ...] = ()
    box: Box | None = None
    services: tuple[Box, ...] = ()
    command_timeout: int = DEFAULT_COMMAND_TIMEOUT
    no_response_timeout: int = DEFAULT_NO_RESPONSE_TIMEOUT
    source_dir: str = ""
    workflows: tuple[Workflow, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def targets(self) -> tuple[str, ...]:
        """Every old-style deploy target name of the file, once each, in file order."""
        names = (name for p in self.pipelines for name, _ in p.targets)
        return tuple(dict.fromkeys(names))

    def pipeline(self, name: str) -> Pipeline | None:
        return next((p for p in self.pipelines if p.name == name), None)

    def box_for(self, pipeline: Pipeline) -> Box | None:
        return pipeline.box or self.box

    def services_for(self, pipeline: Pipeline) -> tuple[Box, ...]:
        return pipeline.services or self.services
