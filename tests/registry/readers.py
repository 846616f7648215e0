"""Attestation readers written from the specs, not from scratchd's code.

- :func:`buildx_find`: what ``docker buildx imagetools inspect`` does
  (BuildKit's attestation storage doc): fetch the tag's index, take the
  entries with ``vnd.docker.reference.type`` = ``attestation-manifest`` whose
  ``vnd.docker.reference.digest`` is the platform manifest, and read their
  ``application/vnd.in-toto+json`` layers by ``in-toto.io/predicate-type``.
- :func:`oras_find`: what ``oras discover`` does (OCI distribution 1.1):
  ``GET /v2/<name>/referrers/<digest>``; on 404 the fallback tag
  ``sha256-<hex>``; then each referrer manifest's layers as above.

Both take a :class:`Source` so the same reader works on a registry and on
an OCI layout directory. They return ``{"sbom": statement, "provenance":
statement}`` with whatever they found.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import requests

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
ACCEPT = ", ".join(
    (
        *INDEX_TYPES,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


class RegistrySource:
    """Plain-HTTP registry access with ``requests`` (loopback test registries)."""

    def __init__(self, host: str, name: str) -> None:
        self.base = f"http://{host}/v2/{name}"

    def manifest(self, ref: str) -> dict | None:
        got = requests.get(f"{self.base}/manifests/{ref}", headers={"Accept": ACCEPT}, timeout=10)
        return _checked(got.content, ref) if got.status_code == 200 else None

    def blob(self, digest: str) -> bytes:
        got = requests.get(f"{self.base}/blobs/{digest}", timeout=10)
        got.raise_for_status()
        return _verified(got.content, digest)

    def referrers(self, digest: str) -> dict | None:
        got = requests.get(f"{self.base}/referrers/{digest}", timeout=10)
        return got.json() if got.status_code == 200 else None


class LayoutSource:
    """An OCI image layout directory; a tag is looked up in ``index.json``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def manifest(self, ref: str) -> dict | None:
        if not ref.startswith("sha256:"):
            index = json.loads((self.path / "index.json").read_text())
            named = [
                m
                for m in index["manifests"]
                if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == ref
            ]
            if not named:
                return None
            ref = named[0]["digest"]
        try:
            return json.loads(self.blob(ref))
        except FileNotFoundError:
            return None

    def blob(self, digest: str) -> bytes:
        data = (self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()
        return _verified(data, digest)

    def referrers(self, digest: str) -> dict | None:
        """A layout has no API: like ORAS's OCI store, scan its manifests for ``subject``."""
        index = json.loads((self.path / "index.json").read_text())
        found = []
        for entry in index["manifests"]:
            manifest = json.loads(self.blob(entry["digest"]))
            if (manifest.get("subject") or {}).get("digest") == digest:
                found.append(entry)
        return {"manifests": found}


def buildx_find(source, tag: str) -> tuple[str, dict]:
    """(platform manifest digest, statements) via the image index of ``tag``."""
    index = source.manifest(tag)
    assert index is not None and index["mediaType"] in INDEX_TYPES, index
    return buildx_walk(source, index)


def buildx_walk(source, index: dict) -> tuple[str, dict]:
    """The buildx walk over one image index (a registry's, or a layout's index.json)."""
    images = [m for m in index["manifests"] if m.get("platform", {}).get("os") != "unknown"]
    platform = images[0]["digest"]
    found: dict = {}
    for entry in index["manifests"]:
        notes = entry.get("annotations", {})
        if notes.get("vnd.docker.reference.type") != "attestation-manifest":
            continue
        if notes.get("vnd.docker.reference.digest") != platform:
            continue
        found.update(_statements(source, source.manifest(entry["digest"])))
    return platform, found


def oras_find(source, subject: str) -> dict:
    """Statements of every referrer of ``subject``, API first, then the fallback tag."""
    index = source.referrers(subject)
    if index is None:
        index = source.manifest(subject.replace(":", "-")) or {"manifests": []}
    found: dict = {}
    for desc in index["manifests"]:
        manifest = source.manifest(desc["digest"])
        assert manifest["subject"]["digest"] == subject
        found.update(_statements(source, manifest))
    return found


def _statements(source, manifest: dict) -> dict:
    found = {}
    for layer in manifest["layers"]:
        kind = layer.get("annotations", {}).get("in-toto.io/predicate-type", "")
        if layer["mediaType"] != "application/vnd.in-toto+json":
            continue
        statement = json.loads(source.blob(layer["digest"]))
        assert statement["predicateType"] == kind
        if kind == "https://spdx.dev/Document":
            found["sbom"] = statement
        elif kind.startswith("https://slsa.dev/provenance/"):
            found["provenance"] = statement
    return found


def _checked(content: bytes, ref: str) -> dict:
    if ref.startswith("sha256:"):
        _verified(content, ref)
    return json.loads(content)


def _verified(data: bytes, digest: str) -> bytes:
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data
