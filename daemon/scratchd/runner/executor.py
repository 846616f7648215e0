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
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scratchd.errors import BuildCancelled, InfrastructureError, PipelineError, ScratchdError
from scratchd.models import BuildStatus, CommitInfo, Secret
from scratchd.pipeline.plan import Pipeline, Plan, Step
from scratchd.redact import Redactor
from scratchd.runner.backend import Backend, PipelineDirs, PipelineJob
from scratchd.runner.environment import after_env, pipeline_env, step_env
from scratchd.runner.sink import INFO, BuildOutput, LineConsumer
from scratchd.runner.steps import Publishing, RegistryClientFactory, StepContext, run_step

log = logging.getLogger(__name__)

DEFAULT_PIPELINES = ("build", "deploy")


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


class Executor:
    """Runs :class:`BuildRequest` s; one instance serves many builds (no per-build state)."""

    def __init__(
        self,
        backend_factory: Callable[[str], Backend],
        sink: LineConsumer | None = None,
        *,
        registry_client_factory: RegistryClientFactory | None = None,
        image_store: Path | None = None,
        registry_credentials: object = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend_factory = backend_factory
        self._consumers: tuple[LineConsumer, ...] = (sink,) if sink else ()
        self._publishing = Publishing(registry_client_factory, image_store, registry_credentials)
        self._clock = clock

    def run(self, request: BuildRequest, cancel: threading.Event) -> BuildResult:
        """Run the request's pipelines in order; stop at the first that fails."""
        build_id = request.build_id or uuid.uuid4().hex
        secret_values = _secret_values(request)
        output = BuildOutput(build_id, Redactor(secret_values), self._consumers)
        run = _BuildRun(request, build_id, output, cancel, self._publishing, self._clock)
        run.backend_factory = self._backend_factory
        run.secret_values = tuple(secret_values)
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


class _BuildRun:
    """The state of one build while it runs (the Executor itself keeps none)."""

    def __init__(self, request, build_id, output, cancel, publishing, clock) -> None:
        self.request: BuildRequest = request
        self.build_id = build_id
        self.output: BuildOutput = output
        self.cancel: threading.Event = cancel
        self.publishing: Publishing = publishing
        self.clock = clock
        self.backend_factory: Callable[[str], Backend] = _no_backend
        self.secret_values: tuple[str, ...] = ()
        self.steps: list[StepResult] = []
        self.failure: StepResult | None = None
        self.cancelled = False
        self.run_id = uuid.uuid4().hex
        self.started = time.time()
        self.fields = {
            "REPO": request.commit.repo,
            "BRANCH": request.commit.branch,
            "COMMIT": request.commit.sha,
            "BUILD_ID": build_id,
        }

    def run_all(self, pipelines: list[Pipeline]) -> None:
        root = self.request.source
        for pipeline in pipelines:
            if self.cancel.is_set():
                self.cancelled = True
                self.info(pipeline.name, "", f"=== pipeline {pipeline.name} not started: cancelled")
                return
            dirs = self.dirs(pipeline.name, root)
            self.run_pipeline(pipeline, dirs)
            if self.failure or self.cancelled:
                return
            root = dirs.output  # wercker: the build's output is the deploy's source

    def dirs(self, name: str, root: Path) -> PipelineDirs:
        base = self.request.work_dir / name
        source = root / self.request.plan.source_dir if self.request.plan.source_dir else root
        return PipelineDirs(
            root=root,
            source=source,
            output=base / "output",
            cache=self.request.cache_dir,
            report=base / "report",
            pipeline=base,
        )

    def run_pipeline(self, pipeline: Pipeline, dirs: PipelineDirs) -> None:
        plan, request = self.request.plan, self.request
        env = self.base_env(pipeline.name)
        job = PipelineJob(
            name=pipeline.name,
            run_id=self.run_id,
            dirs=dirs,
            box=plan.box_for(pipeline),
            services=plan.services_for(pipeline),
            env=env,
            secrets=self.secret_values,
        )
        fields = {**self.fields, "PIPELINE": pipeline.name}
        log.info("pipeline %s starting", pipeline.name, extra=fields)
        self.info(pipeline.name, "", f"=== pipeline {pipeline.name}")
        dirs.pipeline.mkdir(parents=True, exist_ok=True)
        backend = self.backend_factory(request.executor)
        try:
            try:
                backend.setup(job)
            except BuildCancelled:
                self.cancelled = True
                return
            env = {**env, **backend.env_paths()}
            for step in self.steps_of(pipeline):
                if self.failure or self.cancelled:
                    break
                self.run_one(pipeline.name, step, backend, job, env, after=False)
            if not self.cancelled:
                result = "failed" if self.failure else "passed"
                failed = self.failure
                extra = after_env(
                    result, failed.name if failed else "", failed.message if failed else ""
                )
                for step in pipeline.after_steps:
                    if self.cancelled:
                        break
                    self.run_one(pipeline.name, step, backend, job, {**env, **extra}, after=True)
        finally:
            backend.teardown()
        status = "cancelled" if self.cancelled else "failed" if self.failure else "passed"
        log.info("pipeline %s %s", pipeline.name, status, extra=fields)

    def steps_of(self, pipeline: Pipeline) -> tuple[Step, ...]:
        """The pipeline's steps, or the requested deploy target's (wercker v1)."""
        target = self.request.deploy_target
        if pipeline.name != "build" and target:
            for name, steps in pipeline.targets:
                if name == target:
                    return steps
        return pipeline.steps

    def base_env(self, name: str) -> dict[str, str]:
        extra = dict(self.request.env)
        extra.update({k: Secret.reveal(v) for k, v in self.request.secrets.items()})
        env = pipeline_env(
            self.request.commit,
            name,
            run_id=self.run_id,
            pipeline_id=f"{self.build_id}-{name}",
            started=self.started,
            extra=extra,
        )
        if name != "build" and self.request.deploy_target:
            env["WERCKER_DEPLOYTARGET_NAME"] = self.request.deploy_target
        return env

    def run_one(self, pipeline: str, step: Step, backend, job, env, *, after: bool) -> None:
        step_id = uuid.uuid4().hex[:12]
        env = {**env, **step_env(step_id, step.name, env)}
        ctx = StepContext(
            pipeline=pipeline,
            step=step,
            step_id=step_id,
            backend=backend,
            job=job,
            env=env,
            output=self.output,
            cancel=self.cancel,
            commit=self.request.commit,
            repo_source=self.request.source,
            publishing=self.publishing,
            command_timeout=self.request.plan.command_timeout,
            no_response_timeout=self.request.plan.no_response_timeout,
        )
        fields = {**self.fields, "PIPELINE": pipeline, "STEP": step.name}
        self.info(pipeline, step.name, f"--- {'after-step ' if after else ''}{step.name}")
        started = self.clock()
        try:
            if self.cancel.is_set():
                raise BuildCancelled("build cancelled")
            outcome = run_step(ctx)
        except BuildCancelled as exc:
            self.cancelled = True
            self.record(pipeline, step, "cancelled", started, after, message=str(exc))
            return
        except ScratchdError as exc:
            if isinstance(exc, InfrastructureError) and exc.retryable:
                exc.args = (self.output.redact(str(exc)),)
                log.warning("step %s: infrastructure error", step.name, extra=fields)
                raise
            message = self.output.redact(str(exc))
            code = getattr(exc, "step_exit_code", None)
            result = self.record(pipeline, step, "failed", started, after, code, message)
            if not after and self.failure is None:
                self.failure = result
            return
        extra = {"IMAGE_DIGEST": outcome.digest} if outcome.digest else {}
        log.info("step %s passed", step.name, extra={**fields, **extra})
        self.record(pipeline, step, "passed", started, after, digest=outcome.digest)
        self.steps[-1] = _with_images(self.steps[-1], outcome.images)

    def record(
        self, pipeline, step, status, started, after, code=None, message="", digest=""
    ) -> StepResult:
        duration = self.clock() - started
        result = StepResult(pipeline, step.name, status, duration, after, code, message, digest)
        self.steps.append(result)
        tail = f": {message}" if message else ""
        self.info(pipeline, step.name, f"--- {step.name} {status} in {duration:.1f}s{tail}")
        return result

    def info(self, pipeline: str, step: str, text: str) -> None:
        self.output.emit(pipeline, step, INFO, text)

    def result(self, duration: float) -> BuildResult:
        failed = self.failure
        if self.cancelled:
            status = BuildStatus.CANCELLED
        elif failed is not None:
            status = BuildStatus.FAILED
        else:
            status = BuildStatus.PASSED
        return BuildResult(
            build_id=self.build_id,
            status=status,
            steps=tuple(self.steps),
            failed_pipeline=failed.pipeline if failed else "",
            failed_step=failed.name if failed else "",
            message=failed.message if failed else ("build cancelled" if self.cancelled else ""),
            exit_code=failed.exit_code if failed else None,
            output=self.output.text(),
            duration=duration,
        )


def _no_backend(kind: str) -> Backend:
    raise PipelineError(f"no backend for executor {kind!r}")


def _with_images(result: StepResult, images: tuple[str, ...]) -> StepResult:
    from dataclasses import replace

    return replace(result, images=images) if images else result
