"""``scratchd inspect IMAGE``: what is in an image and where it came from.

IMAGE is an OCI layout (``PATH`` or ``PATH:TAG``, when PATH is a
directory) or a registry reference (``host/repo:tag`` or ``host/repo@sha256:…``).
Prints a summary of the attached SPDX SBOM and SLSA provenance; ``--json``
prints the documents themselves. Exit code 1 when the image has neither.

The attestation names no build at the default provenance (it would break
the reproducible digest), so the build comes from this host's state
database: every passed build that pushed the image's index or platform
manifest is listed as ``built by``. Elsewhere (no config, no database)
that part is left out; with an explicit ``--config`` it must work.
"""

from __future__ import annotations

import argparse

from scratchd.cli.state import add_config_argument


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="show an image's SBOM and provenance (registry reference or OCI layout)",
        description="Find the SBOM and provenance attached to IMAGE (the image index "
        "entries buildx reads, else the OCI referrers) and summarise them.",
    )
    p.add_argument("image", metavar="IMAGE", help="OCI_LAYOUT[:TAG] or host/repo[:tag|@digest]")
    p.add_argument("--json", action="store_true", help="print the SBOM and provenance documents")
    p.add_argument(
        "--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
        help="allow plain HTTP / unverified TLS for this registry (repeatable)",
    )  # fmt: skip
    add_config_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import json

    from scratchd.errors import ImageError
    from scratchd.image.inspect import find, summary

    found = find(*_source(args))
    if found is None:
        raise ImageError(f"{args.image}: no such image")
    builds = _builds_of(args, found.digest, found.platform)
    if args.json:
        doc: dict[str, object] = {
            "digest": found.digest,
            "manifest": found.platform,
            "sbom": found.sbom,
            "provenance": found.provenance,
        }
        if builds is not None:
            doc["builds"] = [b.to_json() for b in builds]
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        lines = summary(found)
        for build in builds or ():
            what = f"{build.repo} {build.branch or build.ref} {build.sha[:12]}, {build.status}"
            lines.append(f"built by    build {build.id} ({what})")
        print("\n".join(lines))
    return 0 if found.statements else 1


def _builds_of(args: argparse.Namespace, *digests: str) -> list | None:
    """This host's passed builds that pushed one of ``digests``; None without a state DB."""
    from scratchd.cli.state import load, open_store
    from scratchd.errors import ScratchdError

    try:
        store = open_store(load(args))
    except ScratchdError:
        if args.config is not None:
            raise
        return None
    try:
        found = {b.id: b for d in dict.fromkeys(digests) for b in store.builds_with_digest(d)}
    finally:
        store.close()
    return sorted(found.values(), key=lambda b: b.id, reverse=True)


def _source(args: argparse.Namespace) -> tuple:
    """``(reference, manifest, blob, referrers)`` for the layout or the registry."""
    from pathlib import Path

    from scratchd.cli.push import _split_layout

    path, tag = _split_layout(args.image)
    if Path(path).is_dir():
        return _layout_source(Path(path), tag)
    return _registry_source(args)


def _layout_source(path, tag: str | None) -> tuple:
    from scratchd.image.oci_layout import read_blob, read_oci_layout

    image = read_oci_layout(path, tag)
    manifests = {image.digest: image.manifest}
    for child in getattr(image, "manifests", tuple)():
        manifests[child.digest] = child.manifest
    return image.digest, manifests.get, lambda digest: read_blob(path, digest)


def _registry_source(args: argparse.Namespace) -> tuple:
    from scratchd.image.inspect import INDEX_TYPES
    from scratchd.models import DOCKER_MANIFEST, OCI_MANIFEST
    from scratchd.registry.client import RegistryClient
    from scratchd.registry.credentials import CredentialStore
    from scratchd.registry.reference import parse_repository

    name, reference = _split_reference(args.image)
    ref = parse_repository(name)
    client = RegistryClient(CredentialStore(), insecure=args.insecure_registry)
    accept = ", ".join((*INDEX_TYPES, OCI_MANIFEST, DOCKER_MANIFEST))
    return (
        reference,
        lambda r: client.read(ref, "manifests", r, accept),
        lambda digest: client.read(ref, "blobs", digest) or b"{}",
        lambda digest: client.read(ref, "referrers", digest),
    )


def _split_reference(text: str) -> tuple[str, str]:
    """``host/repo:tag`` / ``host/repo@sha256:…`` → (repository, tag or digest)."""
    from scratchd.errors import UsageError

    if "@" in text:
        name, _, digest = text.partition("@")
        return name, digest
    name, sep, tag = text.rpartition(":")
    if not sep or "/" in tag:
        return text, "latest"
    if not name:
        raise UsageError(f"{text!r}: not an image reference")
    return name, tag
