"""What a pipeline step knows about its build, as provenance inputs for the image.

The one entry point, :func:`attest_step_image`, is what
``internal/docker-scratch-push`` calls between baking and publishing. Only
facts that are not secret go in: the configured repository name, the
branch, the pipeline, the commit, the remote URL *without* its userinfo
(a token in ``https://user:token@host/...`` must never reach an image),
the wercker.yml digest, the digests of the box images the backend ran,
the build id. No environment value and no step option is read.
"""

from __future__ import annotations

import time

from scratchd.image.attest import AttestedImage, attest_image
from scratchd.image.build import rfc3339
from scratchd.image.provenance import ProvenanceInputs, without_userinfo
from scratchd.image.types import Image
from scratchd.runner.steps import StepContext


def wants_inventory(ctx: StepContext) -> bool:
    """Whether the bake should record its files for the SBOM (``bake(inventory=...)``)."""
    return ctx.publishing.attest.sbom == "spdx"


def attest_step_image(ctx: StepContext, image: Image, name: str = "") -> Image | AttestedImage:
    """``image`` with the SBOM and provenance the config asks for.

    The SBOM lists what the bake recorded of the files as it wrote the layer,
    never the directory again: a step's processes may still change the tree.
    """
    settings = ctx.publishing.attest
    inputs = step_inputs(ctx, settings.builder_id)
    attested = attest_image(
        image,
        inputs,
        sbom=settings.sbom,
        provenance=settings.provenance,
        name=name or ctx.commit.repo,
    )
    if attested is not image:
        ctx.log(
            f"attached sbom={settings.sbom} provenance={settings.provenance}: {attested.digest}"
        )
    return attested


def step_inputs(ctx: StepContext, builder_id: str = "") -> ProvenanceInputs:
    commit = ctx.commit
    return ProvenanceInputs(
        repository=commit.repo,
        ref=f"refs/heads/{commit.branch}" if commit.branch else "",
        pipeline=ctx.pipeline,
        commit=commit.sha,
        source_uri=without_userinfo(commit.remote_url),
        wercker_yml_sha256=ctx.pipeline_file_sha256,
        boxes=ctx.backend.box_images(),  # what ran: none on the host backend
        builder_id=builder_id,
        build_id=ctx.output.build_id,
        finished_on=rfc3339(int(time.time())),
    )
