"""Running the typed steps of a BuildPlan: one module per step type.

Each module has ``run(ctx) -> StepOutcome`` that raises
:class:`~scratchd.errors.StepFailed` (or another non-retryable
:class:`~scratchd.errors.ScratchdError`) when the step fails. The compiler
already decided each step's type, so :func:`run_step` only dispatches on it;
nothing here knows step ids or YAML.
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scratchd.errors import StepFailed
from scratchd.expand import expand
from scratchd.image.attest import AttestSettings
from scratchd.models import CommitInfo, PushFigures
from scratchd.pipeline import buildplan as bp
from scratchd.runner.backend import Backend, PipelineJob, StepCommand
from scratchd.runner.sink import INFO, BuildOutput

#: ``factory(ref: ImageRef, step_credential: Credential | None)`` → a client with
#: ``push(image, ref, tags)``; the daemon's configured credentials live in the
#: factory (see :func:`scratchd.runner.steps.publish.registry_client_factory`).
RegistryClientFactory = Callable[..., Any]


@dataclass(frozen=True)
class Publishing:
    """Where images go: the registry client factory and the local OCI store."""

    registry_client_factory: RegistryClientFactory | None = None
    image_store: Path | None = None
    bake_limits: Any = None  # scratchd.image.tree.Limits: the daemon's bake caps
    attest: AttestSettings = field(default_factory=AttestSettings)  # SBOM + provenance


@dataclass
class StepContext:
    """Everything one step may use; built fresh by the executor for each step."""

    pipeline: str
    step: bp.PlanStep
    step_id: str
    backend: Backend
    job: PipelineJob
    env: dict[str, str]  # the step's whole environment, as the backend sees it
    output: BuildOutput
    cancel: threading.Event
    commit: CommitInfo
    publishing: Publishing = field(default_factory=Publishing)
    pipeline_file_sha256: str = ""  # the compiled wercker.yml, for provenance
    command_timeout: float = 25 * 60
    no_response_timeout: float = 5 * 60
    #: Where steps start when an earlier step moved the source (setup-go-workspace);
    #: "" is the backend's source dir.
    workdir: str = ""

    def prop(self, key: str, default: str = "") -> str:
        """A step option with ``$VAR`` expanded; ``password`` values become secrets."""
        raw = self.step.prop(key, default)
        value = expand(raw, self.env) if raw else raw
        if self.step.is_secret(key):
            self.output.add_secrets(value)
        return value

    def log(self, text: str) -> None:
        self.output.emit(self.pipeline, self.step.name, INFO, text)

    def run_script(
        self, script: str, *, cwd: str = "", env: Mapping[str, str] = MappingProxyType({})
    ) -> None:
        """Run a shell script on the backend; a non-zero exit is a :class:`StepFailed`."""
        if self.workdir:
            cwd = posixpath.join(self.workdir, cwd)
        command = StepCommand(
            name=self.step.name,
            script=script,
            cwd=cwd,
            env={**self.env, **dict(env)},
            command_timeout=self.command_timeout,
            no_response_timeout=self.no_response_timeout,
        )
        on_line = self.output.for_step(self.pipeline, self.step.name)
        status = self.backend.run(command, on_line, self.cancel)
        if status != 0:
            raise StepFailed(
                f"step {self.step.name!r} exited with status {status}",
                step=self.step.name,
                exit_code=status,
            )


@dataclass(frozen=True)
class StepOutcome:
    """What a passed step leaves behind (the pushed image's digest, if any)."""

    digest: str = ""
    images: tuple[str, ...] = ()  # references pushed or stored, for the summary
    pushes: tuple[PushFigures, ...] = ()  # what each registry push moved (for /metrics)
    platform: str = ""  # the platform manifest when ``digest`` is an (attested) index
    #: Variables the step exports to the steps after it (wercker ran all steps of a
    #: pipeline in one shell, so a step's ``export`` reached the next ones).
    env: Mapping[str, str] = field(default_factory=dict)


def run_step(ctx: StepContext) -> StepOutcome:
    """Run the step by its compiled type; a retired step is only logged."""
    from scratchd.runner.steps import (
        builtin,
        docker_build,
        docker_push,
        local,
        scratch_push,
        script,
    )

    step = ctx.step
    if isinstance(step, builtin.BuiltinStep):
        return builtin.run(ctx)
    if isinstance(step, bp.SkippedStep):
        ctx.log(f"skipped {step.id}: it does not run here ({step.reason})")
        return StepOutcome()
    runners: dict[type, Callable[[StepContext], StepOutcome]] = {
        bp.ScriptStep: script.run,
        bp.ScratchPushStep: scratch_push.run,
        bp.DockerPushStep: docker_push.run,
        bp.DockerBuildStep: docker_build.run,
        bp.LocalStep: local.run,
    }
    return runners[type(step)](ctx)
