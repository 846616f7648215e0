"""The Backend protocol: where a pipeline's steps actually execute.

Lifecycle, per pipeline run (compare woodpecker's backend engine)::

    backend.setup(job)          # create container / network / dirs; may raise BackendError
    backend.service_env()       # optional: variables every step gets (services' links)
    backend.box_images()        # after setup: the images the run uses, by digest (provenance)
    backend.run(command, ...)   # once per step, in order, state carries between steps
    backend.collect()           # optional: copy output/report back (engines on other hosts)
    backend.teardown()          # always called; idempotent; safe after a failed setup

``run`` streams every output line to ``on_line(stream, text)`` as it comes
and returns the step's exit status. A timeout (``command_timeout`` overall,
``no_response_timeout`` without output) or a set ``cancel`` event kills the
whole process group or container exec and raises :class:`StepTimeout` /
:class:`BuildCancelled`. A problem of the backend itself (Docker engine
down, box image missing) raises :class:`BackendError`, never a step failure.

Backends never see YAML: they get a :class:`PipelineJob` and
:class:`StepCommand` objects built by the executor from the BuildPlan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from scratchd.models import BoxDigest
from scratchd.pipeline.buildplan import Box

#: ``on_line(stream, text)``; stream is "stdout" or "stderr", text has no newline.
LineSink = Callable[[str, str], None]


@dataclass(frozen=True)
class PipelineDirs:
    """Host directories of one pipeline run (wercker's /pipeline/* layout)."""

    root: Path  # WERCKER_ROOT: the source the pipeline works on
    source: Path  # WERCKER_SOURCE_DIR (root + source-dir)
    output: Path  # WERCKER_OUTPUT_DIR
    cache: Path  # WERCKER_CACHE_DIR, persists per repository
    report: Path  # WERCKER_REPORT_DIR
    pipeline: Path  # WERCKER_PIPELINE_DIR: parent of the above for this run


@dataclass(frozen=True)
class PipelineJob:
    """What a backend needs to prepare one pipeline run."""

    name: str  # pipeline name ("build", "deploy")
    run_id: str
    dirs: PipelineDirs
    box: Box | None = None
    services: tuple[Box, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # host-view values
    secrets: tuple = ()  # values to mask (str or Secret); never logged
    #: The build's journal fields (REPO, COMMIT, BUILD_ID = the build number ...).
    log_fields: Mapping[str, str] = field(default_factory=dict)

    def journal_fields(self, **more: str) -> dict[str, str]:
        """The fields of a backend's log records for this run.

        ``BUILD_ID`` stays the build's number, so ``journalctl BUILD_ID=42``
        finds the backend's lines too; the backend's own per-run uuid (also
        ``$WERCKER_RUN_ID``) is ``RUN_ID``.
        """
        return {**self.log_fields, "PIPELINE": self.name, "RUN_ID": self.run_id, **more}


@dataclass(frozen=True)
class StepCommand:
    """One step to execute: a shell script with its environment."""

    name: str
    script: str  # full text; starts with "#!" or is run by the shell with set -e already in
    cwd: str = ""  # relative to the source dir
    env: Mapping[str, str] = field(default_factory=dict)  # step-specific additions
    command_timeout: float = 25 * 60
    no_response_timeout: float = 5 * 60


class Backend(Protocol):
    """Runs steps for one pipeline at a time. See the module docstring."""

    def setup(self, job: PipelineJob) -> None: ...

    def env_paths(self) -> Mapping[str, str]:
        """WERCKER_*_DIR values as seen *inside* the backend (container paths)."""
        ...

    def box_images(self) -> tuple[BoxDigest, ...]:
        """The box and service images this run uses, as resolved by setup; () for none."""
        ...

    def run(self, command: StepCommand, on_line: LineSink, cancel: threading.Event) -> int: ...

    def teardown(self) -> None: ...
