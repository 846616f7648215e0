"""What a build is asked to do and what it reports: the executor's data types.

The daemon stores :class:`BuildResult` s and the CLI prints them; both build
:class:`BuildRequest` s. Kept apart from the executor so the state store can
import them without pulling in the step machinery.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scratchd.models import BuildStatus, CommitInfo, Secret
from scratchd.pipeline.plan import Plan


@dataclass(frozen=True)
class BuildRequest:
    """One build: the plan, the commit, and where to work.

    ``source`` is the exported commit tree (the build's ``$WERCKER_ROOT``);
    ``work_dir`` is a fresh directory for this build's pipeline dirs;
    ``cache_dir`` persists per repository. ``pipelines`` empty means
    ``build`` then ``deploy``, those the plan has.
    """

    plan: Plan
    commit: CommitInfo
    source: Path
    work_dir: Path
    cache_dir: Path
    pipelines: tuple[str, ...] = ()
    executor: str = "docker"  # passed to the backend factory: "docker" or "host"
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    build_id: str = ""
    #: wercker's old deploy targets: a deploy pipeline's ``<target>:`` step list runs
    #: instead of its ``steps``, and is ``$WERCKER_DEPLOYTARGET_NAME``.
    deploy_target: str = ""
    #: The build's one masker (``scratchd.redact.Masker``), made when the build
    #: started; None: the executor makes one. The request's secrets are added to it.
    masker: object = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class StepResult:
    pipeline: str
    name: str
    status: str  # "passed", "failed", "cancelled"
    duration: float
    after: bool = False
    exit_code: int | None = None
    message: str = ""
    digest: str = ""
    images: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildResult:
    """The outcome of a build whose steps ran (infrastructure errors raise instead)."""

    build_id: str
    status: BuildStatus  # PASSED, FAILED or CANCELLED
    steps: tuple[StepResult, ...] = ()
    failed_pipeline: str = ""
    failed_step: str = ""
    message: str = ""
    exit_code: int | None = None
    output: str = ""
    duration: float = 0.0

    @property
    def digests(self) -> tuple[str, ...]:
        return tuple(s.digest for s in self.steps if s.digest)

    @property
    def passed(self) -> bool:
        return self.status == BuildStatus.PASSED
