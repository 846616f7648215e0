"""The OCI referrers fallback: keep the ``sha256-<hex>`` tag index up to date.

OCI distribution 1.1 lets a registry index manifests by their ``subject``;
one that does says so by answering the manifest PUT with an ``OCI-Subject``
header, and clients then find referrers with ``GET /v2/<name>/referrers/
<digest>``. Registries that predate it (Distribution 2.x, many hosted
ones) do not, and the spec makes the *pusher* maintain an image index under
the tag ``<alg>-<hex>`` instead: pull it (or start empty on 404), add a
descriptor for the new manifest unless it is there, push it back. ORAS and
other clients read that tag when the referrers API answers 404.
"""

from __future__ import annotations

import json
import logging

from scratchd.errors import RegistryError
from scratchd.image.types import JSONDoc
from scratchd.models import OCI_INDEX
from scratchd.registry.retry import RetryPolicy
from scratchd.registry.transport import Transport
from scratchd.registry.upload import Target

log = logging.getLogger(__name__)

_TAG_LIMIT = 128


def fallback_tag(digest: str) -> str:
    """``sha256:abc…`` → ``sha256-abc…`` (truncated to the 128 characters a tag may have)."""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}-{value}"[:_TAG_LIMIT]


def referrer_descriptor(manifest: bytes, media_type: str, digest: str) -> JSONDoc:
    """The descriptor the referrers list holds: artifactType and annotations copied in."""
    doc = json.loads(manifest)
    artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType", "")
    out: JSONDoc = {"mediaType": media_type, "digest": digest, "size": len(manifest)}
    if artifact_type:
        out["artifactType"] = artifact_type
    if doc.get("annotations"):
        out["annotations"] = doc["annotations"]
    return out


def merged_index(current: bytes | None, descriptor: JSONDoc) -> bytes | None:
    """The referrers index with ``descriptor`` added; None when it is already listed."""
    index: JSONDoc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    if current is not None:
        index = json.loads(current)
        if index.get("mediaType", OCI_INDEX) != OCI_INDEX:
            raise RegistryError(
                f"referrers tag holds a {index.get('mediaType')!r}, not an OCI index: left alone"
            )
        index.setdefault("manifests", [])
    if any(m.get("digest") == descriptor["digest"] for m in index["manifests"]):
        return None
    index["manifests"].append(descriptor)
    return json.dumps(index, sort_keys=True, separators=(",", ":")).encode()


def read_fallback_tag(
    transport: Transport, retry: RetryPolicy, target: Target, subject: str
) -> bytes | None:
    """The current referrers index under ``subject``'s fallback tag (None: 404)."""
    tag = fallback_tag(subject)

    def get() -> bytes | None:
        response = transport.send(
            "GET", target.url(f"manifests/{tag}"), target.host, repository=target.repository,
            ok=(200, 404), headers={"Accept": OCI_INDEX},
        )  # fmt: skip
        return response.content if response.status_code == 200 else None

    return retry.call(get, f"GET referrers tag {tag}")


def write_fallback_tag(
    transport: Transport,
    retry: RetryPolicy,
    target: Target,
    subject: str,
    current: bytes | None,
    descriptor: JSONDoc,
) -> str:
    """Add ``descriptor`` to ``current`` (what :func:`read_fallback_tag` got) and push it."""
    tag = fallback_tag(subject)
    body = merged_index(current, descriptor)
    if body is None:
        return tag

    def put() -> None:
        transport.send(
            "PUT", target.url(f"manifests/{tag}"), target.host, repository=target.repository,
            ok=(200, 201), headers={"Content-Type": OCI_INDEX}, body=body,
        ).close()  # fmt: skip

    retry.call(put, f"PUT referrers tag {tag}")
    log.info("updated referrers tag %s:%s (registry has no referrers API)", target.repository, tag)
    return tag
