"""``internal/docker-build``: build a Dockerfile from the source dir with the engine.

As in wercker, the image is tagged ``image-name`` and a later
``internal/docker-push`` with the same ``image-name`` pushes it.
Docker-backend only.
"""

from __future__ import annotations

from scratchd.errors import PipelineError, StepFailed
from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.docker_push import docker_client, engine_errors


def run(ctx: StepContext) -> StepOutcome:
    client = docker_client(ctx)
    import docker.errors

    source = ctx.job.dirs.source.resolve()
    context = (source / ctx.prop("context", ".")).resolve()
    if context != source and source not in context.parents:
        raise PipelineError(f"{ctx.step.id}: context {ctx.prop('context')!r} is outside the source")
    dockerfile = ctx.prop("dockerfile", "Dockerfile")
    if not (context / dockerfile).is_file():
        raise PipelineError(f"{ctx.step.id}: no {dockerfile} in the source dir's {context.name}")
    image_name = ctx.prop("image-name") or f"scratchd-build-{ctx.step_id}"
    build_args = _pairs(ctx.prop("build-args"))
    ctx.log(f"building {dockerfile} as {image_name}")
    with engine_errors(ctx):
        try:
            image, logs = client.images.build(
                path=str(context),
                dockerfile=dockerfile,
                tag=image_name,
                buildargs=build_args,
                rm=True,
                forcerm=True,
                pull=False,
            )
        except docker.errors.BuildError as exc:  # the Dockerfile failed: the user's build
            for entry in exc.build_log:
                _log_entry(ctx, entry)
            raise StepFailed(f"docker build failed: {exc.msg}", step=ctx.step.name) from None
    for entry in logs:
        _log_entry(ctx, entry)
    ctx.log(f"built {image.short_id} as {image_name}")
    return StepOutcome(images=(image_name,))


def _pairs(text: str) -> dict[str, str]:
    from scratchd.image.options import parse_env_pairs

    return dict(parse_env_pairs(text, what="internal/docker-build option 'build-args'"))


def _log_entry(ctx: StepContext, entry: dict) -> None:
    for line in str(entry.get("stream") or entry.get("error") or "").splitlines():
        if line.strip():
            ctx.output.emit(ctx.pipeline, ctx.step.name, "stdout", line)
