"""SLSA provenance v1 for a baked image: where it came from, as an in-toto predicate.

Only facts the caller hands over in :class:`ProvenanceInputs` go in (the
repository's name, ref, pipeline, commit, the wercker.yml digest, box image
digests, the builder id, the build id); never an environment value or a
step option, so no secret can reach it. At ``min`` (the default) nothing
that differs between two builds of the same commit is written (no
timestamps, no invocation id), which keeps the attestation, and with it the
image index digest, reproducible. ``max`` adds the build id as invocation
id, start and finish times and the pipeline's step names.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from scratchd.errors import ImageOptionError
from scratchd.image.types import JSONDoc
from scratchd.models import BoxDigest

PREDICATE_SLSA = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://scratchd.invalid/buildtypes/wercker-pipeline/v1"
MODES = ("none", "min", "max")
#: What a box's digest is, spelled out in its ``annotations.digestOf`` (see BoxDigest):
#: a registry manifest, or the image config whose digest is a local image's ID.
_DIGEST_OF = {"manifest": "manifest", "image-id": "image-config"}


@dataclass(frozen=True)
class ProvenanceInputs:
    """What a build knows about how an image was made. Empty fields are left out."""

    repository: str = ""  # the configured repository name
    ref: str = ""  # "refs/heads/main" or a branch name
    pipeline: str = ""  # "deploy"
    commit: str = ""  # full git SHA
    source_uri: str = ""  # remote URL of the repository, if it has one
    wercker_yml_sha256: str = ""  # hex
    boxes: tuple[BoxDigest, ...] = ()  # the box and service images the backend ran
    builder_id: str = ""  # default: this host's name
    build_id: str = ""
    steps: tuple[str, ...] = ()
    started_on: str = ""  # RFC 3339, only used at "max"
    finished_on: str = ""


def check_mode(mode: str, what: str = "provenance") -> str:
    if mode not in MODES:
        raise ImageOptionError(f"{what}: unknown mode {mode!r} (want one of {', '.join(MODES)})")
    return mode


def default_builder_id() -> str:
    return socket.gethostname()


def predicate(inputs: ProvenanceInputs, mode: str = "min") -> JSONDoc:
    """The SLSA provenance v1 predicate (``buildDefinition`` + ``runDetails``)."""
    external = {
        k: v
        for k, v in (
            ("repository", inputs.repository),
            ("ref", inputs.ref),
            ("pipeline", inputs.pipeline),
        )
        if v
    }
    definition: JSONDoc = {
        "buildType": BUILD_TYPE,
        "externalParameters": external,
        "resolvedDependencies": resolved_dependencies(inputs),
    }
    builder = {"id": inputs.builder_id or default_builder_id()}
    run: JSONDoc = {"builder": builder}
    if mode == "max":
        if inputs.steps:
            definition["internalParameters"] = {"steps": list(inputs.steps)}
        metadata = {
            k: v
            for k, v in (
                ("invocationId", inputs.build_id),
                ("startedOn", inputs.started_on),
                ("finishedOn", inputs.finished_on),
            )
            if v
        }
        if metadata:
            run["metadata"] = metadata
    return {"buildDefinition": definition, "runDetails": run}


def resolved_dependencies(inputs: ProvenanceInputs) -> list[JSONDoc]:
    """The commit (``gitCommit``), the wercker.yml, and each box image by digest.

    A box's ``annotations.digestOf`` says whether its digest is a registry
    manifest's (pullable by it) or a local image's config (its image ID).
    """
    out: list[JSONDoc] = []
    if inputs.commit:
        source: JSONDoc = {"digest": {"gitCommit": inputs.commit}}
        uri = without_userinfo(inputs.source_uri) or (
            f"scratchd:repo/{inputs.repository}" if inputs.repository else ""
        )
        if uri:
            source["uri"] = f"git+{uri}" + (f"@{inputs.ref}" if inputs.ref else "")
        out.append(source)
    if inputs.wercker_yml_sha256:
        out.append({"name": "wercker.yml", "digest": {"sha256": inputs.wercker_yml_sha256}})
    for box in inputs.boxes:
        algorithm, _, value = box.digest.partition(":")
        if value:
            out.append(
                {
                    "uri": f"docker-image://{box.name}",
                    "digest": {algorithm: value},
                    "annotations": {"digestOf": _DIGEST_OF.get(box.of, box.of)},
                }
            )
    return out


def without_userinfo(url: str) -> str:
    """``https://user:token@host/x`` → ``https://host/x``; scp-style ``git@host:x`` kept.

    A remote URL may carry a token; provenance is published with the image.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
