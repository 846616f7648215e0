"""Find and summarise an image's attestations, wherever its manifests come from.

The caller supplies ``manifest(reference) -> bytes | None`` and
``blob(digest) -> bytes`` (a registry or an OCI layout) and, where there is
one, ``referrers(digest) -> bytes | None``; this module knows only the
documents. It follows the paths the tools follow: an image index's
``vnd.docker.reference.*`` entries (buildx), else the referrers of the
manifest (the OCI 1.1 API, then the ``sha256-<hex>`` fallback tag).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field

from scratchd.image.attest import IN_TOTO, PREDICATE_ANNOTATION, REFERENCE_DIGEST
from scratchd.image.provenance import PREDICATE_SLSA
from scratchd.image.sbom import PREDICATE_SPDX
from scratchd.image.types import JSONDoc

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


@dataclass
class Found:
    digest: str  # what the reference names (an index or a manifest)
    platform: str  # the platform manifest
    statements: dict[str, JSONDoc] = field(default_factory=dict)  # predicate type -> statement

    @property
    def sbom(self) -> JSONDoc | None:
        sbom: JSONDoc | None = (self.statements.get(PREDICATE_SPDX) or {}).get("predicate")
        return sbom

    @property
    def provenance(self) -> JSONDoc | None:
        return self.statements.get(PREDICATE_SLSA)


def find(
    reference: str,
    manifest: Callable[[str], bytes | None],
    blob: Callable[[str], bytes],
    referrers: Callable[[str], bytes | None] = lambda digest: None,
) -> Found | None:
    """The attestations of the image ``reference`` names; None if it does not exist."""
    top = manifest(reference)
    if top is None:
        return None
    doc = json.loads(top)
    digest = "sha256:" + hashlib.sha256(top).hexdigest()
    if doc.get("mediaType") in INDEX_TYPES or "manifests" in doc:
        entries = doc.get("manifests") or []
        images = [e for e in entries if (e.get("platform") or {}).get("os") != "unknown"]
        platform = images[0]["digest"] if images else ""
        attached = [e for e in entries if (e.get("annotations") or {}).get(REFERENCE_DIGEST)]
    else:
        platform = digest
        listed = referrers(digest) or manifest(digest.replace(":", "-", 1))
        attached = json.loads(listed).get("manifests", []) if listed else []
    found = Found(digest, platform)
    for entry in attached:
        if (entry.get("annotations") or {}).get(REFERENCE_DIGEST, platform) != platform:
            continue
        data = manifest(entry["digest"])
        if data is not None:
            found.statements.update(_statements(json.loads(data), blob))
    return found


def _statements(doc: JSONDoc, blob: Callable[[str], bytes]) -> dict[str, JSONDoc]:
    out: dict[str, JSONDoc] = {}
    for layer in doc.get("layers") or []:
        kind = (layer.get("annotations") or {}).get(PREDICATE_ANNOTATION)
        if layer.get("mediaType") == IN_TOTO and kind:
            out[kind] = json.loads(blob(layer["digest"]))
    return out


def summary(found: Found) -> list[str]:
    """Human-readable lines: what is in the image and where it came from."""
    lines = [f"digest      {found.digest}"]
    if found.platform != found.digest:
        lines.append(f"manifest    {found.platform}")
    lines += _sbom_lines(found.sbom) if found.sbom else ["sbom        none"]
    lines += _provenance_lines(found.provenance) if found.provenance else ["provenance  none"]
    return lines


def _sbom_lines(doc: JSONDoc) -> list[str]:
    packages = [p for p in doc.get("packages", []) if p.get("SPDXID") != "SPDXRef-Image"]
    lines = [
        f"sbom        {doc.get('spdxVersion')}: {len(doc.get('files', []))} files, "
        f"{len(packages)} packages"
    ]
    for package in packages:
        lines.append(f"  package   {package['name']} {package.get('versionInfo', '')}".rstrip())
    return lines


def _provenance_lines(statement: JSONDoc) -> list[str]:
    predicate = statement.get("predicate") or {}
    definition = predicate.get("buildDefinition") or {}
    lines = [f"provenance  {statement.get('predicateType')}"]
    lines.append(f"  builder   {(predicate.get('runDetails') or {}).get('builder', {}).get('id')}")
    lines.append(f"  buildType {definition.get('buildType')}")
    for key, value in sorted((definition.get("externalParameters") or {}).items()):
        lines.append(f"  {key:<9} {value}")
    for dep in definition.get("resolvedDependencies") or []:
        where = dep.get("uri") or dep.get("name", "")
        digests = ", ".join(f"{k}:{v}" for k, v in sorted(dep.get("digest", {}).items()))
        lines.append(f"  from      {where} {digests}")
    return lines
