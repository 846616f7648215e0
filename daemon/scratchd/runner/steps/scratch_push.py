"""``internal/docker-scratch-push``: bake $WERCKER_ROOT into a FROM-scratch image and push it.

No Docker engine is involved: the image builder writes the layer, config
and manifest from the directory, and the registry client pushes them. The
image's ``created``, file mtimes, ``revision`` and ``source`` come from the
commit, so rebuilding a commit gives the same digest. Without a
``repository`` the image goes to the local OCI layout store when one is
configured (handy on machines with no registry).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from scratchd.errors import PipelineError
from scratchd.models import ImageSpec
from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.attestations import attest_step_image, wants_inventory
from scratchd.runner.steps.publish import push_image, target_for

#: Options this step understands (the parser lints the same list).
OPTIONS = (
    "cmd",
    "entrypoint",
    "ports",
    "env",
    "labels",
    "working-dir",
    "user",
    "volumes",
    "stopsignal",
    "tag",
    "repository",
    "registry",
    "username",
    "password",
    "public-env",
    "public-labels",
)


def run(ctx: StepContext) -> StepOutcome:
    from scratchd.image.build import bake

    spec = image_spec(ctx)  # options first: a typo fails before any work is done
    target = target_for(ctx)
    if target is None and ctx.publishing.image_store is None:
        raise PipelineError(
            f"{ctx.step.id}: no 'repository' option and no local image store configured"
        )
    if target is None:  # OCI media types: tools read an OCI layout's index only for those
        spec = replace(spec, oci=True)
    root = image_root(ctx)
    blob_dir = ctx.job.dirs.pipeline / "blobs" / ctx.step_id
    blob_dir.mkdir(parents=True, exist_ok=True)
    ctx.log(f"baking {root} into a scratch image")
    limits = ctx.publishing.bake_limits
    baked = bake(root, spec, blob_dir, limits=limits, inventory=wants_inventory(ctx))
    ctx.log(f"image {baked.digest}")
    image = attest_step_image(ctx, baked, target.name if target else "")
    if target is not None:
        return push_image(ctx, image, target)
    store = ctx.publishing.image_store
    assert store is not None  # checked before baking: without a target there is a store
    return store_image(ctx, image, store)


def image_root(ctx: StepContext) -> Path:
    """$WERCKER_ROOT, or the output dir when the root is empty (as wercker did)."""
    root = ctx.job.dirs.root
    if root.is_dir() and any(root.iterdir()):
        return root
    output = ctx.job.dirs.output
    if output.is_dir() and any(output.iterdir()):
        return output
    raise PipelineError(
        f"{ctx.step.id}: nothing to bake: $WERCKER_ROOT and $WERCKER_OUTPUT_DIR are empty"
    )


def image_spec(ctx: StepContext) -> ImageSpec:
    """The step's options as an :class:`ImageSpec`; errors name the option."""
    from scratchd.image.options import host_platform
    from scratchd.image.options import image_spec as spec_from_options
    from scratchd.image.provenance import without_userinfo

    spec = spec_from_options(
        ctx.prop,
        what=lambda option: _what(ctx, option),
        created=ctx.commit.commit_time,
        revision=ctx.commit.sha,
        source=without_userinfo(ctx.commit.remote_url),  # a remote URL may carry a token
        platform=host_platform(),
    )
    refuse_secrets(ctx, "env", spec.env)
    refuse_secrets(ctx, "labels", spec.labels)
    return spec


def refuse_secrets(ctx: StepContext, option: str, pairs: tuple[tuple[str, str], ...]) -> None:
    """The second line of defence behind the compile step's check by name.

    An image config is public, so no value the build's masker knows (a
    secret that came through ``--env``, a registry password the daemon
    holds) may go there unless the wercker.yml marks the option public.
    """
    if ctx.step.is_public(option):
        return
    for key, value in pairs:
        item = f"{key}={value}"
        if ctx.output.redact(item) != item:
            raise PipelineError(
                f"{_what(ctx, option)}: {ctx.output.redact(key)} holds a secret value, which "
                f"would go in clear into the image config; remove it, or add "
                f"'public-{option}: true' if it is meant to be public"
            )


def store_image(ctx: StepContext, image, store: Path) -> StepOutcome:
    """Write the image into the local OCI layout store under the step's tags."""
    from scratchd.image.oci_layout import write_oci_layout

    tags = target_tags(ctx)
    write_oci_layout(image, store, tags)
    digest = getattr(image, "image", image).digest  # layout tags name the platform manifest
    ctx.log(f"stored {digest} in {store} as {', '.join(tags)}")
    return StepOutcome(digest=digest, images=tuple(f"{store}:{t}" for t in tags))


def target_tags(ctx: StepContext) -> tuple[str, ...]:
    from scratchd.image.options import parse_tags

    return parse_tags(ctx.prop("tag"), default=("latest",), what=_what(ctx, "tag"))


def _what(ctx: StepContext, option: str) -> str:
    return f"{ctx.step.where}{ctx.step.id} option {option!r}"
