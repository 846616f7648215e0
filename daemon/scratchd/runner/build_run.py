"""One build while it runs: pipelines in order, steps in order, results recorded.

Holds the per-build state (failure so far, cancelled, step results) so the
:class:`~scratchd.runner.executor.Executor` itself keeps none and can serve
builds from several threads.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path

from scratchd.errors import BuildCancelled, InfrastructureError, ScratchdError
from scratchd.outcome import StepResult
from scratchd.pipeline.buildplan import BuildPlan, PipelinePlan, PlanStep
from scratchd.runner.backend import Backend, PipelineDirs, PipelineJob
from scratchd.runner.environment import after_env, step_env
from scratchd.runner.sink import INFO, BuildOutput
from scratchd.runner.steps import Publishing, StepContext, run_step

log = logging.getLogger(__name__)


class BuildRun:
    """The state of one build while it runs (the Executor itself keeps none)."""

    def __init__(
        self,
        plan: BuildPlan,
        output: BuildOutput,
        cancel: threading.Event,
        *,
        backend_factory: Callable[[str], Backend],
        publishing: Publishing,
        secret_values: tuple[str, ...],
        clock: Callable[[], float],
    ) -> None:
        self.plan = plan
        self.build_id = output.build_id
        self.output = output
        self.cancel = cancel
        self.backend_factory = backend_factory
        self.publishing = publishing
        self.secret_values = secret_values
        self.clock = clock
        self.steps: list[StepResult] = []
        self.failure: StepResult | None = None
        self.cancelled = False
        self.ready: Backend | None = None  # prepared for the first pipeline (see Executor.prepare)
        self.fields = {
            "REPO": plan.commit.repo,
            "BRANCH": plan.commit.branch,
            "COMMIT": plan.commit.sha,
            "BUILD_ID": self.build_id,
        }

    def run_all(self) -> None:
        root = self.plan.source
        outputs: dict[str, Path] = {}
        for pipeline in self.plan.pipelines:
            if pipeline.fan_in:  # workflows: several required pipelines' outputs
                root = self.gather(pipeline.name, pipeline.fan_in, outputs)
            elif pipeline.source_from is not None:  # workflows: the required pipeline's output
                root = outputs.get(pipeline.source_from, self.plan.source)
            if self.cancel.is_set():
                self.cancelled = True
                self.info(pipeline.name, "", f"=== pipeline {pipeline.name} not started: cancelled")
                return
            dirs = self.dirs(pipeline.name, root)
            self.run_pipeline(pipeline, dirs)
            if self.failure or self.cancelled:
                return
            root = outputs[pipeline.name] = dirs.output  # the build's output: the deploy's source

    def gather(
        self, name: str, sources: tuple[tuple[str, str], ...], outputs: dict[str, Path]
    ) -> Path:
        """A fan-in's source: each required output copied into its own directory, as wercker did."""
        root = self.plan.work_dir / name / "fan-in"
        for directory, source in sources:
            if source in outputs and outputs[source].is_dir():
                shutil.copytree(outputs[source], root / directory, symlinks=True)
            else:
                (root / directory).mkdir(parents=True, exist_ok=True)
        root.mkdir(parents=True, exist_ok=True)
        return root

    def dirs(self, name: str, root: Path) -> PipelineDirs:
        base = self.plan.work_dir / name
        source = root / self.plan.source_dir if self.plan.source_dir else root
        return PipelineDirs(
            root=root,
            source=source,
            output=base / "output",
            cache=self.plan.cache_dir,
            report=base / "report",
            pipeline=base,
        )

    def job(self, pipeline: PipelinePlan, dirs: PipelineDirs) -> PipelineJob:
        return PipelineJob(
            name=pipeline.name,
            run_id=self.plan.run_id,
            dirs=dirs,
            box=pipeline.box,
            services=pipeline.services,
            env=dict(pipeline.env),
            secrets=self.secret_values,
            log_fields={**self.fields, "PIPELINE": pipeline.name},
        )

    def first_job(self) -> PipelineJob | None:
        """The first pipeline's job, as :meth:`run_all` will make it (for a prepared backend)."""
        if not self.plan.pipelines:
            return None
        first = self.plan.pipelines[0]
        if first.fan_in or first.source_from is not None:
            return None
        return self.job(first, self.dirs(first.name, self.plan.source))

    def run_pipeline(self, pipeline: PipelinePlan, dirs: PipelineDirs) -> None:
        job = self.job(pipeline, dirs)
        env, fields = dict(job.env), dict(job.log_fields)
        log.info("pipeline %s starting", pipeline.name, extra=fields)
        self.info(pipeline.name, "", f"=== pipeline {pipeline.name}")
        dirs.pipeline.mkdir(parents=True, exist_ok=True)
        # A backend prepared while the build waited for its slot serves the first pipeline.
        backend, self.ready = self.ready or self.backend_factory(self.plan.executor), None
        try:
            try:
                backend.setup(job)
            except BuildCancelled:
                self.cancelled = True
                return
            env = {**env, **backend.env_paths(), **service_env(backend)}
            for step in pipeline.steps:
                if self.failure or self.cancelled:
                    break
                env.update(self.run_one(pipeline.name, step, backend, job, env, after=False))
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
            self.collect(backend)
        finally:
            backend.teardown()
        status = "cancelled" if self.cancelled else "failed" if self.failure else "passed"
        log.info("pipeline %s %s", pipeline.name, status, extra=fields)

    def collect(self, backend: Backend) -> None:
        """Bring the output home from a backend that does not share our disk.

        Only a pipeline that passed needs it (the next pipeline or the image
        is made from it); a failure to fetch it is the backend's error.
        """
        collect = getattr(backend, "collect", None)
        if collect is not None and not self.failure and not self.cancelled:
            collect()

    def run_one(
        self, pipeline: str, step: PlanStep, backend, job, env, *, after: bool
    ) -> Mapping[str, str]:
        """Run one step and record its result; returns what it exports to later steps."""
        step_id = uuid.uuid4().hex[:12]
        moved = env.get("WERCKER_SOURCE_DIR", "") != backend.env_paths().get("WERCKER_SOURCE_DIR")
        workdir = env.get("WERCKER_SOURCE_DIR", "") if moved else ""
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
            commit=self.plan.commit,
            publishing=self.publishing,
            pipeline_file_sha256=self.plan.pipeline_file_sha256,
            command_timeout=self.plan.command_timeout,
            no_response_timeout=self.plan.no_response_timeout,
            workdir=workdir,
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
            return {}
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
            return {}
        extra = {"IMAGE_DIGEST": outcome.digest} if outcome.digest else {}
        log.info("step %s passed", step.name, extra={**fields, **extra})
        self.record(pipeline, step, "passed", started, after, outcome=outcome)
        return outcome.env

    def record(
        self, pipeline, step, status, started, after, code=None, message="", outcome=None
    ) -> StepResult:
        duration = self.clock() - started
        result = StepResult(pipeline, step.name, status, duration, after, code, message)
        if outcome is not None:
            result = replace(
                result,
                digest=outcome.digest,
                images=outcome.images,
                pushes=outcome.pushes,
                platform=outcome.platform,
            )
        self.steps.append(result)
        tail = f": {message}" if message else ""
        self.info(pipeline, step.name, f"--- {step.name} {status} in {duration:.1f}s{tail}")
        return result

    def info(self, pipeline: str, step: str, text: str) -> None:
        self.output.emit(pipeline, step, INFO, text)


def service_env(backend: Backend) -> Mapping[str, str]:
    """The link variables of the pipeline's services (``REDIS_PORT_6379_TCP_ADDR``...).

    The box's shell has them; step options are expanded with them too, so
    ``server: https://$KUBE_PORT_443_TCP_ADDR`` means what the shell would
    make of it, as in wercker. Backends without services have none.
    """
    variables = getattr(backend, "service_env", None)
    return variables() if variables is not None else {}
