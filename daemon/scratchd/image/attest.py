"""Attach an SBOM and provenance to an image the way BuildKit and ORAS read them.

The platform manifest is left exactly as baked (its digest must not change
when attestations are switched on). Next to it goes one *attestation
manifest*: an OCI image manifest with ``artifactType``
``application/vnd.docker.attestation.manifest.v1+json``, the empty config,
one ``application/vnd.in-toto+json`` layer per in-toto statement, and a
``subject`` naming the platform manifest (what the OCI referrers API keys
on). Both go into an OCI image index, platform manifest first; the
attestation entry has platform ``unknown/unknown`` and the
``vnd.docker.reference.*`` annotations, which is how ``docker buildx
imagetools inspect`` finds it and why Docker pulls skip it.

Every document is canonical JSON built only from the image and the
caller's inputs, so the same commit gives the same index digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from scratchd.errors import ImageOptionError
from scratchd.image.build import canonical_json
from scratchd.image.provenance import PREDICATE_SLSA, ProvenanceInputs, check_mode, predicate
from scratchd.image.sbom import PREDICATE_SPDX, spdx_document
from scratchd.image.types import Blob, Image, JSONDoc
from scratchd.models import OCI_INDEX, OCI_MANIFEST, Descriptor

ATTESTATION_ARTIFACT = "application/vnd.docker.attestation.manifest.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
PREDICATE_ANNOTATION = "in-toto.io/predicate-type"
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
SBOM_MODES = ("spdx", "none")


@dataclass(frozen=True)
class AttestSettings:
    """What to attach (the daemon config's ``sbom``/``provenance``/``builder_id``)."""

    sbom: str = "spdx"
    provenance: str = "min"
    builder_id: str = ""  # "": this host's name


@dataclass(frozen=True)
class AttestedImage:
    """An image index: the platform image plus its attestation manifest."""

    index: bytes
    image: Image
    attestation: Image
    media_type: str = OCI_INDEX

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.index).hexdigest()

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.index))

    @property
    def manifest(self) -> bytes:
        """The bytes a tag points at (the index), as :class:`Image` names them."""
        return self.index

    def manifests(self) -> tuple[Image, Image]:
        """Child manifests, in the order they must reach a registry (before the index)."""
        return (self.image, self.attestation)

    def blobs(self) -> tuple[Blob, ...]:
        return (*self.image.blobs(), *self.attestation.blobs())


def check_sbom_mode(mode: str, what: str = "sbom") -> str:
    if mode not in SBOM_MODES:
        raise ImageOptionError(f"{what}: unknown value {mode!r} (want spdx or none)")
    return mode


def attest_image(
    image: Image,
    inputs: ProvenanceInputs | None = None,
    *,
    sbom: str = "spdx",
    provenance: str = "min",
    name: str = "",
    tool: str = "",
) -> Image | AttestedImage:
    """``image`` with the attestations asked for, or ``image`` itself when none are.

    The SBOM lists what the bake recorded (``bake(..., inventory=True)``);
    an image baked without that record has its layer read back instead.
    """
    check_sbom_mode(sbom)
    check_mode(provenance)
    name = name or "image"
    statements = []
    if sbom == "spdx":
        created = _config(image).get("created") or "1970-01-01T00:00:00Z"
        doc = spdx_document(image, name=name, created=created, tool=tool or _tool())
        statements.append(_statement(image, name, PREDICATE_SPDX, doc))
    if provenance != "none":
        doc = predicate(inputs or ProvenanceInputs(), provenance)
        statements.append(_statement(image, name, PREDICATE_SLSA, doc))
    if not statements:
        return image
    attestation = attestation_manifest(image, statements)
    return AttestedImage(image_index(image, attestation), image, attestation)


def attestation_manifest(image: Image, statements: list[tuple[str, bytes]]) -> Image:
    """The OCI manifest holding ``(predicate type, statement JSON)`` layers."""
    config = _blob(EMPTY_CONFIG, b"{}")
    layers = tuple(
        _blob(IN_TOTO, data, ((PREDICATE_ANNOTATION, kind),)) for kind, data in statements
    )
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ATTESTATION_ARTIFACT,
        "config": config.descriptor.to_json(),
        "layers": [layer.descriptor.to_json() for layer in layers],
        "subject": image.descriptor.to_json(),
    }
    return Image(canonical_json(doc), OCI_MANIFEST, config, layers)


def image_index(image: Image, attestation: Image) -> bytes:
    """The OCI index: the platform manifest first, then its attestation manifest."""
    config = _config(image)
    platform = {"architecture": config.get("architecture", ""), "os": config.get("os", "")}
    if config.get("variant"):
        platform["variant"] = config["variant"]
    entry = {**image.descriptor.to_json(), "platform": platform}
    attest_entry = {
        **attestation.descriptor.to_json(),
        "annotations": {REFERENCE_DIGEST: image.digest, REFERENCE_TYPE: "attestation-manifest"},
        "platform": {"architecture": "unknown", "os": "unknown"},
    }
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry, attest_entry]}
    return canonical_json(doc)


def _statement(image: Image, name: str, kind: str, doc: JSONDoc) -> tuple[str, bytes]:
    statement = {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": image.digest.removeprefix("sha256:")}}],
        "predicateType": kind,
        "predicate": doc,
    }
    return kind, canonical_json(statement)


def _blob(media_type: str, data: bytes, annotations: tuple[tuple[str, str], ...] = ()) -> Blob:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Blob(Descriptor(media_type, digest, len(data), annotations), data=data)


def _config(image: Image) -> JSONDoc:
    with image.config.open() as f:
        config: JSONDoc = json.loads(f.read())
    return config


def _tool() -> str:
    from scratchd import __version__

    return f"scratchd-{__version__}"
