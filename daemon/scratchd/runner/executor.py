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

__all__ = ["BuildOutcome", "Executor", "StepResult"]

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

    def run(self, plan: BuildPlan, cancel: threading.Event, masker: Redactor) -> BuildOutcome:
        """Run the plan's pipelines in order, stop at the first that fails.

        ``masker`` is the build's one secret masker, made when the build
        started (it already knows ``plan.secret_values()``).
        """
        output = BuildOutput(plan.build_id, masker, self._consumers)
        run = BuildRun(
            plan,
            output,
            cancel,
            backend_factory=self._backend_factory,
            publishing=self._publishing,
            secret_values=plan.secret_values(),
            clock=self._clock,
        )
        started = self._clock()
        error: BaseException | None = None
        try:
            run.run_all()
        except Exception as exc:  # every end of a build becomes its outcome
            if not isinstance(exc, ScratchdError):
                log.exception("build %s crashed", plan.build_id, extra=run.fields)
            error = exc
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
