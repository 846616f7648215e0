"""The one compile step: wercker.yml + repository settings + secrets + commit → BuildPlan.

The daemon's workers and ``scratchd build`` both call :func:`compile_build`,
so a build is prepared the same way wherever it runs. Everything that needs
step ids, YAML or the repository's step directories happens here, before a
backend starts: pipeline selection, old-style deploy targets, each step's
type, local steps' ``step.yml``, the pipeline environment. Errors point at
the wercker.yml as ``FILE:LINE:COL`` the way ``scratchd lint`` does.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scratchd.errors import PipelineError, StepCompileError
from scratchd.models import CommitInfo, Secret
from scratchd.pipeline import buildplan as bp
from scratchd.pipeline import imagesecrets
from scratchd.pipeline import registrysteps as rs
from scratchd.pipeline import steps as known
from scratchd.pipeline.environment import pipeline_env
from scratchd.pipeline.localstep import find_step, local_step
from scratchd.pipeline.plan import Pipeline, Plan, Step
from scratchd.pipeline.selection import DEFAULT_PIPELINES, select
from scratchd.pipeline.workflows import fan_in, required_source

__all__ = ["DEFAULT_PIPELINES", "CompileInput", "compile_build", "compile_step", "plan_build"]

_INTERNAL = {
    "internal/docker-scratch-push": bp.ScratchPushStep,
    "internal/docker-push": bp.DockerPushStep,
    "internal/docker-build": bp.DockerBuildStep,
}

#: Registry steps run natively (a vendored copy in .scratchd/steps/ wins).
_BUILTIN: dict[str, type[rs.BuiltinStep]] = {
    "npm-install": rs.NpmInstallStep,
    "npm-test": rs.NpmTestStep,
    "bundle-install": rs.BundleInstallStep,
    "pip-install": rs.PipInstallStep,
    "setup-go-workspace": rs.SetupGoWorkspaceStep,
    "install-packages": rs.InstallPackagesStep,
    "add-ssh-key": rs.AddSshKeyStep,
    "add-to-known_hosts": rs.AddToKnownHostsStep,
    "bash-template": rs.BashTemplateStep,
    "kubectl": rs.KubectlStep,
    "slack-notifier": rs.SlackNotifierStep,
    "github-create-release": rs.GithubCreateReleaseStep,
    "github-upload-asset": rs.GithubUploadAssetStep,
}


@dataclass(frozen=True)
class CompileInput:
    """What a build is made of, before anything runs.

    ``pipelines`` are asked for explicitly (``scratchd build --pipeline``):
    each must exist. ``configured`` are the repository config's pipelines:
    those the file has run. Neither: ``build`` then ``deploy`` as present.
    """

    text: str
    path: str  # the name errors show (the file in the repository, not a temp copy)
    commit: CommitInfo
    source: Path
    work_dir: Path
    cache_dir: Path
    pipelines: tuple[str, ...] = ()
    configured: tuple[str, ...] = ()
    executor: str = "docker"
    env: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    build_id: str = ""
    deploy_target: str = ""


def compile_build(inp: CompileInput) -> bp.BuildPlan:
    """Parse ``inp.text`` and resolve it into a BuildPlan; raises PipelineError."""
    from scratchd.pipeline.parse import parse_plan

    plan = parse_plan(
        inp.text,
        inp.path,
        requested=inp.pipelines,
        configured=inp.configured,
        branch=inp.commit.branch,
    )
    return plan_build(plan, inp)


def plan_build(plan: Plan, inp: CompileInput) -> bp.BuildPlan:
    """Resolve an already parsed Plan (``inp.text`` is not read)."""
    build_id = inp.build_id or uuid.uuid4().hex
    run_id = uuid.uuid4().hex
    started = _now()
    secrets = {k: v.reveal() for k, v in inp.secrets.items()}  # the step environment
    extra = {**inp.env, **secrets}
    compiled = []
    for pipeline in _select(plan, inp):
        env = pipeline_env(
            inp.commit,
            pipeline.name,
            run_id=run_id,
            pipeline_id=f"{build_id}-{pipeline.name}",
            started=started,
            extra=extra,
        )
        if pipeline.name != "build" and inp.deploy_target:
            env["WERCKER_DEPLOYTARGET_NAME"] = inp.deploy_target
        compiled.append(
            bp.PipelinePlan(
                name=pipeline.name,
                steps=_base_path(pipeline, inp)
                + _steps(_steps_of(pipeline, inp.deploy_target), inp),
                after_steps=_steps(pipeline.after_steps, inp),
                box=plan.box_for(pipeline),
                services=plan.services_for(pipeline),
                env=env,
                source_from=required_source(plan.workflows, pipeline.name),
                fan_in=fan_in(plan.workflows, pipeline.name),
            )
        )
    return bp.BuildPlan(
        path=inp.path,
        commit=inp.commit,
        source=inp.source,
        work_dir=inp.work_dir,
        cache_dir=inp.cache_dir,
        pipelines=tuple(compiled),
        executor=inp.executor,
        build_id=build_id,
        run_id=run_id,
        started=started,
        source_dir=plan.source_dir,
        command_timeout=plan.command_timeout,
        no_response_timeout=plan.no_response_timeout,
        secrets=tuple(v for v in secrets.values() if v),
        pipeline_file_sha256=hashlib.sha256(inp.text.encode()).hexdigest() if inp.text else "",
    )


def _now() -> float:
    import time

    return time.time()


def _select(plan: Plan, inp: CompileInput) -> list[Pipeline]:
    """The pipelines to run, in order (see :mod:`scratchd.pipeline.selection`)."""
    try:
        return select(plan, inp.pipelines, inp.configured, inp.commit.branch)
    except PipelineError as exc:
        raise PipelineError(f"{plan.path}: {exc}") from None


def _steps_of(pipeline: Pipeline, target: str) -> tuple[Step, ...]:
    """The pipeline's steps, or the requested deploy target's (wercker v1)."""
    if pipeline.name != "build" and target:
        for name, steps in pipeline.targets:
            if name == target:
                return steps
    return pipeline.steps


def _base_path(pipeline: Pipeline, inp: CompileInput) -> tuple[bp.PlanStep, ...]:
    """wercker's ``base-path``: an absolute path in the box; on the host, the same
    path under the pipeline's own directory (never outside the build's dirs)."""
    if not pipeline.base_path:
        return ()
    path = "/" + pipeline.base_path.strip("/")
    if inp.executor == "host":
        path = "$WERCKER_PIPELINE_DIR/base-path" + path
    return (rs.BasePathStep(name="base-path", id="base-path", options=(("path", path),)),)


def _steps(steps: Iterable[Step], inp: CompileInput) -> tuple[bp.PlanStep, ...]:
    steps = tuple(steps)
    for step in steps:
        _refuse_secrets_in_image(step, inp)
    return tuple(compile_step(step, inp.source, inp.path) for step in steps)


def _refuse_secrets_in_image(step: Step, inp: CompileInput) -> None:
    """A push step's ``env``/``labels`` may not carry a secret unless marked public."""
    if step.id not in imagesecrets.PUSH_STEPS:
        return
    for option, name in imagesecrets.secret_references(step.properties, inp.secrets.__contains__):
        raise _error(step, inp.path, imagesecrets.refusal(step.id, option, name))


def compile_step(step: Step, source: Path, path: str) -> bp.PlanStep:
    """One parsed step → its typed value; ``source`` is the exported repository."""
    ref = known.parse_step_id(step.id)
    if ref is None:
        raise _error(step, path, f"malformed step id {step.id!r}")
    common: dict[str, Any] = {
        "name": step.name,
        "id": step.id,
        "options": step.properties,
        "secret_options": known.SECRET_OPTIONS,
        "line": step.line,
    }
    kind = step.kind or known.classify(ref)
    if kind == known.SCRIPT:
        return bp.ScriptStep(**common, code=step.code, cwd=step.cwd or step.prop("cwd"))
    if kind == known.INTERNAL:
        return _INTERNAL[ref.identifier](**common)
    if kind == known.BUILTIN and find_step(ref, source) is None:
        name = known.builtin_name(ref)
        secret = known.SECRET_OPTIONS | known.BUILTIN_SECRETS.get(name, frozenset())
        tools = known.BUILTIN_STEPS[name][1]
        return _BUILTIN[name](**{**common, "secret_options": secret}, tools=tools)
    if kind == known.RETIRED:
        reason = known.RETIRED_INTERNAL.get(ref.identifier, "wercker's platform ran it")
        return bp.SkippedStep(**common, reason=reason)
    if step.url:  # the parser keeps ``name "file://path"``'s url apart from the id
        ref = known.StepRef(ref.identifier, ref.owner, ref.name, ref.version, step.url)
    try:
        return local_step(ref, source, common)
    except PipelineError as exc:
        raise _error(step, path, str(exc)) from None


def _error(step: Step, path: str, message: str) -> StepCompileError:
    return StepCompileError(message, step=step.name, path=path, line=step.line, column=step.column)
