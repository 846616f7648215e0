"""How a build ended: one typed :class:`BuildOutcome`, decided in one place.

Whatever happened to a build — its steps passed, a step failed or timed
out, the user or a newer commit cancelled it, Docker or a registry failed
under it, the daemon stopped, or scratchd itself has a bug — becomes a
:class:`BuildOutcome` in :func:`decide`. The executor, the daemon's workers
(for errors before a build runs) and ``scratchd build`` all go through it,
so the scheduler records an outcome by its status and never has to tell
exceptions apart again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from scratchd.errors import BuildCancelled, InfrastructureError, ScratchdError
from scratchd.models import BuildStatus, PushFigures

__all__ = ["BuildOutcome", "StepResult", "decide"]


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
    pushes: tuple[PushFigures, ...] = ()
    platform: str = ""  # the platform manifest, when ``digest`` is an index


@dataclass(frozen=True)
class BuildOutcome:
    """The one result of a build; ``message`` is already masked.

    ``status`` is PASSED, FAILED (the user's build: a step, the wercker.yml),
    ERROR (infrastructure, or ``internal`` for a scratchd bug), CANCELLED or
    INTERRUPTED (cut short by the daemon stopping; it runs again).
    ``retryable`` is only ever true for an infrastructure ERROR.
    """

    build_id: str
    status: BuildStatus
    steps: tuple[StepResult, ...] = ()
    failed_pipeline: str = ""
    failed_step: str = ""
    message: str = ""
    exit_code: int | None = None
    output: str = ""
    duration: float = 0.0
    retryable: bool = False
    internal: bool = False

    @property
    def digests(self) -> tuple[str, ...]:
        return tuple(s.digest for s in self.steps if s.digest)

    @property
    def pushes(self) -> tuple[PushFigures, ...]:
        """Every registry push the build made, whatever became of the build after it."""
        return tuple(p for s in self.steps for p in s.pushes)

    @property
    def platform_digests(self) -> tuple[str, ...]:
        """The platform manifests inside the pushed indexes (the attested images)."""
        return tuple(s.platform for s in self.steps if s.platform)

    @property
    def references(self) -> tuple[str, ...]:
        """Where the build's images went (``repo:tag``), in push order."""
        return tuple(ref for s in self.steps for ref in s.images)

    @property
    def passed(self) -> bool:
        return self.status == BuildStatus.PASSED

    @property
    def reason(self) -> str:
        """What the state records about a build that did not pass."""
        if self.failed_pipeline and self.failed_step:
            where = f"{self.failed_pipeline}/{self.failed_step}"
            return f"step {where} failed: {self.message}"
        return self.message

    @property
    def cut_short(self) -> bool:
        """Stopped by something outside the build (cancel, infrastructure), not by itself."""
        return self.status == BuildStatus.CANCELLED or (
            self.status == BuildStatus.ERROR and not self.internal
        )

    def interrupted(self, reason: str) -> BuildOutcome:
        """This outcome, as the daemon's shutdown cutting the build short."""
        return replace(
            self,
            status=BuildStatus.INTERRUPTED,
            message=reason,
            failed_pipeline="",
            failed_step="",
            retryable=False,
        )


def decide(
    build_id: str = "",
    *,
    error: BaseException | None = None,
    failure: StepResult | None = None,
    cancelled: bool = False,
    steps: tuple[StepResult, ...] = (),
    output: str = "",
    duration: float = 0.0,
    mask: Callable[[str], str] = lambda text: text,
) -> BuildOutcome:
    """The outcome of a build from what happened to it (an error wins over the steps)."""
    done: dict[str, Any] = {
        "build_id": build_id,
        "steps": steps,
        "output": output,
        "duration": duration,
    }
    if error is not None:
        return _of_error(error, mask, done)
    if cancelled:
        return BuildOutcome(status=BuildStatus.CANCELLED, message="build cancelled", **done)
    if failure is not None:
        return BuildOutcome(
            status=BuildStatus.FAILED,
            failed_pipeline=failure.pipeline,
            failed_step=failure.name,
            message=failure.message or "build failed",
            exit_code=failure.exit_code,
            **done,
        )
    return BuildOutcome(status=BuildStatus.PASSED, **done)


def _of_error(
    error: BaseException, mask: Callable[[str], str], done: dict[str, Any]
) -> BuildOutcome:
    text = mask(str(error) or type(error).__name__)
    if isinstance(error, BuildCancelled):
        return BuildOutcome(status=BuildStatus.CANCELLED, message=text, **done)
    if isinstance(error, InfrastructureError):
        return BuildOutcome(
            status=BuildStatus.ERROR, message=text, retryable=error.retryable, **done
        )
    if isinstance(error, ScratchdError):  # the user's build: a step, the wercker.yml
        return BuildOutcome(
            status=BuildStatus.FAILED,
            failed_step=getattr(error, "step", "") or "",
            message=text,
            exit_code=getattr(error, "step_exit_code", None),
            **done,
        )
    return BuildOutcome(
        status=BuildStatus.ERROR, message=f"internal error: {text}", internal=True, **done
    )
