"""Runs a BuildPlan's pipelines (build, then deploy) on a backend; returns one BuildOutcome.

The executor is where wercker's run semantics live: what environment each
step sees at run time, that the build's output dir becomes the deploy's
source, that after-steps run whatever the result. Which pipelines and which
steps run was decided by the compiler; how the build ended is decided by
:func:`scratchd.outcome.decide` from what happened here, errors included,
so nothing escapes :meth:`Executor.run` but a typed outcome. Everything
concrete (the backend, the registry client, where output lines go, the
build's secret masker) is handed in.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scratchd.errors import ScratchdError
from scratchd.image.attest import AttestSettings
from scratchd.outcome import BuildOutcome, StepResult, decide
from scratchd.pipeline.buildplan import BuildPlan
from scratchd.redact import Redactor
from scratchd.runner.backend import Backend
from scratchd.runner.build_run import BuildRun
from scratchd.runner.sink import BuildOutput, LineConsumer
from scratchd.runner.steps import Publishing, RegistryClientFactory

__all__ = ["BuildOutcome", "Executor", "Prepared", "StepResult"]

log = logging.getLogger(__name__)


class Executor:
    """Runs :class:`BuildRequest` s; one instance serves many builds (no per-build state)."""

    def __init__(
        self,
        backend_factory: Callable[[str], Backend],
        sink: LineConsumer | None = None,
        *,
        registry_client_factory: RegistryClientFactory | None = None,
        image_store: Path | None = None,
        bake_limits=None,
        clock: Callable[[], float] = time.monotonic,
        attest: AttestSettings | None = None,
    ) -> None:
        self._backend_factory = backend_factory
        self._consumers: tuple[LineConsumer, ...] = (sink,) if sink else ()
        self._publishing = Publishing(
            registry_client_factory, image_store, bake_limits, attest or AttestSettings()
        )
        self._clock = clock

    def prepare(self, plan: BuildPlan, masker: Redactor) -> Prepared | None:
        """Get the first pipeline's container ready before the build may run steps.

        For a build waiting for a slot on a pool engine: its backend makes
        and starts the pipeline container (nothing runs in it yet), so that
        :meth:`run` only has to hand it the source. None when the backend
        cannot prepare this pipeline (or has no way to); :meth:`Prepared.discard`
        removes a prepared container that will not run. Engine errors raise
        :class:`~scratchd.errors.BackendError`.
        """
        job = self._build_run(plan, threading.Event(), masker).first_job()
        if job is None:
            return None
        backend = self._backend_factory(plan.executor)
        prepare = getattr(backend, "prepare", None)
        if prepare is None or not prepare(job):
            return None
        return Prepared(plan.executor, backend)

    def run(
        self,
        plan: BuildPlan,
        cancel: threading.Event,
        masker: Redactor,
        prepared: object | None = None,
    ) -> BuildOutcome:
        """Run the plan's pipelines in order, stop at the first that fails.

        ``masker`` is the build's one secret masker, made when the build
        started (it already knows ``plan.secret_values()``). ``prepared``
        (from :meth:`prepare`, same plan) serves the first pipeline; it is
        removed whatever happens.
        """
        run = self._build_run(plan, cancel, masker)
        if isinstance(prepared, Prepared):  # made by prepare(): anything else is not ours
            if prepared.kind == plan.executor:
                run.ready = prepared.backend
            else:
                prepared.discard()
        started = self._clock()
        error: BaseException | None = None
        try:
            run.run_all()
        except Exception as exc:  # every end of a build becomes its outcome
            if not isinstance(exc, ScratchdError):
                log.exception("build %s crashed", plan.build_id, extra=run.fields)
            error = exc
        finally:
            if run.ready is not None:  # cancelled before its first pipeline
                run.ready.teardown()
        output = run.output
        return decide(
            plan.build_id,
            error=error,
            failure=run.failure,
            cancelled=run.cancelled,
            steps=tuple(run.steps),
            output=output.text(),
            duration=self._clock() - started,
            mask=output.redact,
        )

    def _build_run(self, plan: BuildPlan, cancel: threading.Event, masker: Redactor) -> BuildRun:
        return BuildRun(
            plan,
            BuildOutput(plan.build_id, masker, self._consumers),
            cancel,
            backend_factory=self._backend_factory,
            publishing=self._publishing,
            secret_values=plan.secret_values(),
            clock=self._clock,
        )


@dataclass
class Prepared:
    """A backend whose first pipeline's container is ready (see :meth:`Executor.prepare`)."""

    kind: str  # the plan's executor it was made for ("engine:NAME")
    backend: Backend

    def discard(self) -> None:
        """Remove the prepared container: its build runs elsewhere, or not at all."""
        self.backend.teardown()
