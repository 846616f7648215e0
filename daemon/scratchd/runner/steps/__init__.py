"""The kinds of step a pipeline can hold, and the one place that tells them apart.

Each kind is a module with ``run(ctx) -> StepOutcome`` that raises
:class:`~scratchd.errors.StepFailed` (or another non-retryable
:class:`~scratchd.errors.ScratchdError`) when the step fails. The executor
knows nothing about kinds: it builds a :class:`StepContext` and calls
:func:`run_step`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from scratchd.errors import PipelineError, StepFailed
from scratchd.image.attest import AttestSettings
from scratchd.models import CommitInfo
from scratchd.pipeline.plan import Step
from scratchd.pipeline.steps import SECRET_OPTIONS
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
    attest: AttestSettings = field(default_factory=AttestSettings)  # SBOM + provenance


@dataclass
class StepContext:
    """Everything one step may use; built fresh by the executor for each step."""

    pipeline: str
    step: Step
    step_id: str
    backend: Backend
    job: PipelineJob
    env: dict[str, str]  # the step's whole environment, as the backend sees it
    output: BuildOutput
    cancel: threading.Event
    commit: CommitInfo
    repo_source: Path  # the exported repository tree (local steps live here)
    publishing: Publishing = field(default_factory=Publishing)
    command_timeout: float = 25 * 60
    no_response_timeout: float = 5 * 60

    def prop(self, key: str, default: str = "") -> str:
        """A step option with ``$VAR`` expanded; ``password`` values become secrets."""
        from scratchd.pipeline.env import expand

        raw = self.step.prop(key, default)
        value = expand(raw, self.env) if raw else raw
        if key in SECRET_OPTIONS or key.endswith("-password"):
            self.output.add_secrets(value)
        return value

    def log(self, text: str) -> None:
        self.output.emit(self.pipeline, self.step.name, INFO, text)

    def run_script(self, script: str, *, cwd: str = "", env: Mapping[str, str] = ()) -> None:
        """Run a shell script on the backend; a non-zero exit is a :class:`StepFailed`."""
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


def run_step(ctx: StepContext) -> StepOutcome:
    """Dispatch on the step id's kind: script, internal, retired, local or vendored."""
    from scratchd.pipeline import steps as kinds
    from scratchd.runner.steps import docker_build, docker_push, local, scratch_push, script

    ref = kinds.parse_step_id(ctx.step.id)
    if ref is None:
        raise PipelineError(f"{_where(ctx.step)}malformed step id {ctx.step.id!r}")
    if ctx.step.url:  # the parser keeps ``name "file://path"``'s url apart from the id
        ref = replace(ref, url=ctx.step.url)
    kind = kinds.classify(ref)
    if kind == kinds.SCRIPT:
        return script.run(ctx)
    if kind == kinds.INTERNAL:
        internal = {
            "internal/docker-scratch-push": scratch_push.run,
            "internal/docker-push": docker_push.run,
            "internal/docker-build": docker_build.run,
        }
        return internal[ref.identifier](ctx)
    if kind == kinds.RETIRED:
        reason = kinds.RETIRED_INTERNAL.get(ref.identifier, "wercker's platform ran it")
        ctx.log(f"skipped {ref.identifier}: it does not run here ({reason})")
        return StepOutcome()
    directory = local.find_step(ref, ctx.repo_source)
    if directory is not None:
        return local.run(ctx, ref.name, directory)
    raise PipelineError(unknown_step_message(ctx.step, ref.name))


def _where(step: Step) -> str:
    return f"wercker.yml:{step.line}: " if step.line else ""


def unknown_step_message(step: Step, name: str) -> str:
    """Registry steps are gone with wercker's registry: say how to vendor them."""
    return (
        f"{_where(step)}step {step.id!r} is not available: wercker's step registry is gone. "
        f"Vendor the step: copy its run.sh (and step.yml) into .scratchd/steps/{name}/ "
        f"in the repository, or reference a directory with "
        f"'- {name} \"file://path/to/step\"'"
    )
