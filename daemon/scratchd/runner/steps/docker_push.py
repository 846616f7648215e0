"""``internal/docker-push``: commit the pipeline's container (or push a built image).

Only the Docker backend has a container to commit, so on the host backend
this step fails with a message that says which executor it needs. With
``image-name`` (an image made by ``internal/docker-build``) that image is
pushed instead, as in wercker. The engine does the push, with the step's
credentials passed per request (never stored in a docker config file).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from scratchd.errors import BackendError, PipelineError, RegistryError
from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.publish import Target, target_for


def run(ctx: StepContext) -> StepOutcome:
    client = docker_client(ctx)
    target = target_for(ctx)
    if target is None:
        raise PipelineError(f"{ctx.step.id}: the 'repository' option is required")
    with engine_errors(ctx):
        image_name = ctx.prop("image-name")
        source = client.images.get(image_name) if image_name else commit_container(ctx, client)
        digest = push_image_tags(ctx, client, source, target)
    return StepOutcome(digest=digest, images=tuple(f"{target.name}:{t}" for t in target.tags))


@contextmanager
def engine_errors(ctx: StepContext) -> Iterator[None]:
    """Engine failures are infrastructure errors (retried), not the user's build failing."""
    import docker.errors
    import requests

    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise PipelineError(f"{ctx.step.id}: {exc.explanation or exc}") from None
    except (docker.errors.DockerException, requests.RequestException) as exc:
        raise BackendError(f"{ctx.step.id}: docker engine: {exc}") from None


def push_image_tags(ctx: StepContext, client, image, target: Target) -> str:
    """Tag ``image`` as the target, push, then drop those tags again from the engine.

    The daemon pushes every commit; keeping each pushed tag would fill the
    engine's disk, and the registry now holds the image.
    """
    names = [f"{target.name}:{tag}" for tag in target.tags]
    for tag in target.tags:
        image.tag(target.name, tag=tag)
    try:
        return push_tags(ctx, client, target)
    finally:
        for name in names:
            with suppress(Exception):
                client.images.remove(name, noprune=False)


def docker_client(ctx: StepContext):
    """The Docker backend's engine client; a clear error on other backends."""
    client = getattr(ctx.backend, "client", None)
    if client is None:
        raise PipelineError(
            f"{ctx.step.id} needs the docker executor (run with --executor docker); "
            "on the host executor use internal/docker-scratch-push"
        )
    return client


def commit_container(ctx: StepContext, client):
    """Commit the pipeline container with the step's image options as changes."""
    container = getattr(ctx.backend, "container", None)
    if container is None:
        raise PipelineError(f"{ctx.step.id}: the pipeline has no container to commit")
    ctx.log(f"committing container {container.short_id}")
    # The pipeline container runs a keep-alive loop; the image gets the box's own
    # cmd and entrypoint back unless the step sets them.
    box_config = container.image.attrs.get("Config") or {}
    conf = {
        "Cmd": box_config.get("Cmd") or [],
        "Entrypoint": box_config.get("Entrypoint") or [],
        **container_config(ctx),
    }
    return container.commit(conf=conf)


def container_config(ctx: StepContext) -> dict:
    """The docker ``Config`` the committed image gets (only options that are set)."""
    from scratchd.image.build import container_config
    from scratchd.runner.steps.scratch_push import image_spec

    return container_config(image_spec(ctx))


def push_tags(ctx: StepContext, client, target: Target) -> str:
    """Push every tag through the engine; returns the manifest digest."""
    auth = None
    if target.username or target.password:
        auth = {"username": target.username, "password": _reveal(target.password)}
    digest = ""
    for tag in target.tags:
        ctx.log(f"pushing {target.name}:{tag}")
        for event in client.images.push(
            target.name, tag=tag, auth_config=auth, stream=True, decode=True
        ):
            if "error" in event:
                detail = event.get("errorDetail", {}).get("message") or event["error"]
                raise RegistryError(f"docker push {target.name}:{tag}: {detail}")
            digest = (event.get("aux") or {}).get("Digest", digest)
    ctx.log(f"pushed {target.name}@{digest}")
    return digest


def _reveal(password) -> str:
    return password.reveal() if password is not None else ""
