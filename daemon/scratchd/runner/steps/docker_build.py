"""``internal/docker-build``: build a Dockerfile from the source dir with the engine.

As in wercker, the image is tagged ``image-name`` for a later
``internal/docker-push`` with the same ``image-name``; when the step itself
names a ``repository`` it is pushed right away. Docker-backend only.
"""

from __future__ import annotations

from scratchd.errors import PipelineError, StepFailed
from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.docker_push import docker_client, push_tags
from scratchd.runner.steps.publish import target_for


def run(ctx: StepContext) -> StepOutcome:
    client = docker_client(ctx)
    import docker.errors

    context = ctx.job.dirs.source / ctx.prop("context", ".")
    dockerfile = ctx.prop("dockerfile", "Dockerfile")
    if not (context / dockerfile).is_file():
        raise PipelineError(f"{ctx.step.id}: no {dockerfile} in the source dir's {context.name}")
    image_name = ctx.prop("image-name") or f"scratchd-build-{ctx.step_id}"
    build_args = _pairs(ctx.prop("build-args"))
    ctx.log(f"building {dockerfile} as {image_name}")
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
    except docker.errors.BuildError as exc:
        for entry in exc.build_log:
            _log_entry(ctx, entry)
        raise StepFailed(f"docker build failed: {exc.msg}", step=ctx.step.name) from None
    for entry in logs:
        _log_entry(ctx, entry)
    target = target_for(ctx)
    if target is None:
        return StepOutcome(images=(image_name,))
    for tag in target.tags:
        image.tag(target.name, tag=tag)
    digest = push_tags(ctx, client, target)
    return StepOutcome(digest=digest, images=tuple(f"{target.name}:{t}" for t in target.tags))


def _pairs(text: str) -> dict[str, str]:
    from scratchd.image.options import parse_env_pairs

    return dict(parse_env_pairs(text, what=f"{'internal/docker-build'} option 'build-args'"))


def _log_entry(ctx: StepContext, entry: dict) -> None:
    for line in str(entry.get("stream") or entry.get("error") or "").splitlines():
        if line.strip():
            ctx.output.emit(ctx.pipeline, ctx.step.name, "stdout", line)
