"""Runs a Plan's pipelines (build, then deploy) on a backend and reports the result.

The executor is where wercker's run semantics live: which pipelines run,
what environment each step sees, that the build's output dir becomes the
deploy's source, that after-steps run whatever the result, and which
failures are the *user's* (a :class:`BuildResult` with status ``failed``)
and which are *ours* (an :class:`InfrastructureError` raised to the caller,
which the scheduler may retry). Everything concrete (the backend, the
registry client, where output lines go) is handed in.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from scratchd.errors import PipelineError, ScratchdError
from scratchd.image.attest import AttestSettings
from scratchd.models import Secret
from scratchd.pipeline.plan import Pipeline, Plan
from scratchd.redact import Redactor
from scratchd.runner.backend import Backend
from scratchd.runner.build_run import BuildRun
from scratchd.runner.results import BuildRequest, BuildResult, StepResult
from scratchd.runner.sink import BuildOutput, LineConsumer
from scratchd.runner.steps import Publishing, RegistryClientFactory

__all__ = ["BuildRequest", "BuildResult", "Executor", "StepResult", "select_pipelines"]

DEFAULT_PIPELINES = ("build", "deploy")


class Executor:
    """Runs :class:`BuildRequest` s; one instance serves many builds (no per-build state)."""

    def __init__(
        self,
        backend_factory: Callable[[str], Backend],
        sink: LineConsumer | None = None,
        *,
        registry_client_factory: RegistryClientFactory | None = None,
        image_store: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        attest: AttestSettings | None = None,
    ) -> None:
        self._backend_factory = backend_factory
        self._consumers: tuple[LineConsumer, ...] = (sink,) if sink else ()
        self._publishing = Publishing(
            registry_client_factory, image_store, attest or AttestSettings()
        )
        self._clock = clock

    def run(self, request: BuildRequest, cancel: threading.Event) -> BuildResult:
        """Run the request's pipelines in order; stop at the first that fails."""
        build_id = request.build_id or uuid.uuid4().hex
        secret_values = tuple(_secret_values(request))
        output = BuildOutput(build_id, Redactor(secret_values), self._consumers)
        run = BuildRun(
            request,
            output,
            cancel,
            backend_factory=self._backend_factory,
            publishing=self._publishing,
            secret_values=secret_values,
            clock=self._clock,
        )
        started = self._clock()
        try:
            run.run_all(select_pipelines(request.plan, request.pipelines))
        except ScratchdError as exc:
            exc.args = (output.redact(str(exc)),)
            raise
        return run.result(self._clock() - started)


def select_pipelines(plan: Plan, names: Iterable[str]) -> list[Pipeline]:
    """The pipelines to run: those asked for (must exist) or build/deploy as present."""
    names = tuple(names)
    if not names:
        chosen = [p for n in DEFAULT_PIPELINES if (p := plan.pipeline(n)) is not None]
        if not chosen:
            raise PipelineError(f"{plan.path}: has neither a 'build' nor a 'deploy' pipeline")
        return chosen
    missing = [n for n in names if plan.pipeline(n) is None]
    if missing:
        known = ", ".join(p.name for p in plan.pipelines) or "none"
        raise PipelineError(f"{plan.path}: no pipeline {missing[0]!r} (pipelines: {known})")
    return [plan.pipeline(n) for n in names]  # type: ignore[misc]


def _secret_values(request: BuildRequest) -> list[str]:
    """Secrets of the request, plus every ``password``-like option and box password.

    Options are expanded against the request's env and secrets up front, so
    a password that arrives through ``--env`` is masked even in lines printed
    before the step that uses it.
    """
    from scratchd.pipeline.env import expand
    from scratchd.pipeline.steps import SECRET_OPTIONS

    secrets = {k: Secret.reveal(v) for k, v in request.secrets.items()}
    env = {**request.env, **secrets}
    values = list(secrets.values())
    for pipeline in request.plan.pipelines:
        targets = [steps for _, steps in pipeline.targets]
        for step in itertools.chain(pipeline.steps, pipeline.after_steps, *targets):
            values += [expand(v, env) for k, v in step.properties if k in SECRET_OPTIONS]
    values += [expand(box.password, env) for box in _boxes(request.plan) if box.password]
    return [v for v in values if v]


def _boxes(plan: Plan):
    yield from (b for b in (plan.box, *plan.services) if b is not None)
    for pipeline in plan.pipelines:
        yield from (b for b in (pipeline.box, *pipeline.services) if b is not None)
