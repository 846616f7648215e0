"""``scratchd bake DIR``: a directory → a FROM-scratch image, no Docker engine.

Only argparse is imported at module level: ``scratchd`` imports every
command module to build its parser, and a bake must start in a few tens of
milliseconds (no docker SDK, requests, pygit2 or yaml on this path).
"""

from __future__ import annotations

import argparse

from scratchd.cli.push import add_push_arguments, push_tags


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bake",
        help="bake a directory into a FROM-scratch image (OCI layout or docker archive)",
        description="Bake exactly the files of DIR into a single-layer FROM-scratch image. "
        "Prints the manifest digest.",
    )
    p.add_argument("dir", metavar="DIR", help="the files to put at the image root")
    p.add_argument("--cmd", help='"./app --port 5000" (split like a shell) or a JSON array')
    p.add_argument("--entrypoint", help="like --cmd")
    p.add_argument("--port", action="append", default=[], help='"5000", "5000, 8080/udp"')
    p.add_argument("--env", action="append", default=[], metavar="K=V")
    p.add_argument("--label", action="append", default=[], metavar="K=V")
    p.add_argument("--workdir", default="", help="absolute working directory")
    p.add_argument("--user", default="")
    p.add_argument("--stop-signal", default="")
    p.add_argument("--volume", action="append", default=[], metavar="PATH")
    p.add_argument("--tag", action="append", default=[], help="repeatable; spaces/commas split")
    p.add_argument("--revision", default="", help="commit SHA (label + OCI annotation)")
    p.add_argument("--source", default="", help="source URL (label + OCI annotation)")
    p.add_argument("--created", help="EPOCH or RFC3339 (default: $SOURCE_DATE_EPOCH, else 0)")
    p.add_argument("--platform", help="OS/ARCH[/VARIANT] (default: this machine's)")
    p.add_argument(
        "--format",
        choices=("docker", "oci"),
        help="media types (default: oci for --oci-layout, since skopeo and umoci read only "
        "OCI manifests from a layout; docker v2 schema 2 for --docker-archive)",
    )
    p.add_argument("--compression", choices=("gzip", "zstd"), default="gzip")
    p.add_argument(
        "--gzip-level", type=int, choices=range(10), metavar="0-9", help="default: 1 (fastest)"
    )
    out = p.add_mutually_exclusive_group()  # or neither, with --push
    out.add_argument("--oci-layout", metavar="PATH", help="write (or add to) an OCI layout")
    out.add_argument("--docker-archive", metavar="FILE", help="write a `docker load` tarball")
    p.add_argument("--json", action="store_true", help="print digests and sizes as JSON")
    add_attest_arguments(p)
    add_push_arguments(p)
    p.set_defaults(handler=run)


def add_attest_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("attestations (attached as an OCI image index)")
    group.add_argument(
        "--sbom",
        choices=("spdx", "none"),
        help="SPDX 2.3 SBOM (default: spdx with --push, else none)",
    )
    group.add_argument(
        "--provenance",
        choices=("none", "min", "max"),
        help="SLSA provenance v1; max adds timestamps and run ids, so the index digest "
        "varies (default: min with --push, else none)",
    )
    group.add_argument("--builder-id", default="", help="provenance builder id (default: hostname)")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from scratchd.image.build import DEFAULT_GZIP_LEVEL
    from scratchd.image.build import bake as bake_only

    spec = spec_from_args(args)
    bake = _attesting(args, bake_only)
    tags = _tags(args)
    level = DEFAULT_GZIP_LEVEL if args.gzip_level is None else args.gzip_level
    pushed: dict = {}
    if args.oci_layout:
        from scratchd.image.oci_layout import write_oci_layout

        layout = Path(args.oci_layout)
        image = bake(Path(args.dir), spec, layout / "blobs" / "sha256", gzip_level=level)
        write_oci_layout(image, layout, tags)
    elif args.docker_archive:
        image = _bake_archive(args, spec, tags, level, bake)
    else:  # --push alone: the layer lives in a temp dir while it is pushed
        from scratchd.cli.push import bake_and_push

        image, pushed = bake_and_push(args, spec, tags, level, bake)
    if args.push and not pushed:
        from scratchd.cli.push import push_from_args

        pushed = push_from_args(args, image, tags)
    result = {**summary(image, tags), **pushed}
    print(json.dumps(result, indent=2) if args.json else image.digest)
    return 0


def _bake_archive(args, spec, tags, level, bake):
    import tempfile
    from pathlib import Path

    from scratchd.image.docker_archive import write_docker_archive

    target = Path(args.docker_archive)
    with tempfile.TemporaryDirectory(prefix=".scratchd-bake-", dir=target.parent) as tmp:
        image = bake(Path(args.dir), spec, Path(tmp), gzip_level=level)
        write_docker_archive(image, target, tags)
    return image


#: The flag of each image option, in the order of ``options.IMAGE_OPTIONS``.
_IMAGE_FLAGS = (
    "cmd",
    "entrypoint",
    "env",
    "port",
    "label",
    "volume",
    "workdir",
    "user",
    "stop-signal",
)


def _attesting(args: argparse.Namespace, bake):
    """``bake`` that also attaches the SBOM and provenance the flags ask for."""
    from scratchd.image.attest import attest_image
    from scratchd.image.build import rfc3339
    from scratchd.image.provenance import ProvenanceInputs

    def bake_and_attest(root, spec, blob_dir, **kwargs):
        import time

        sbom = args.sbom or ("spdx" if args.push else "none")
        started = rfc3339(int(time.time()))
        image = bake(root, spec, blob_dir, inventory=sbom == "spdx", **kwargs)
        inputs = ProvenanceInputs(
            repository=args.push or "",
            commit=args.revision,
            source_uri=args.source,
            builder_id=args.builder_id,
            started_on=started,
            finished_on=rfc3339(int(time.time())),
        )
        provenance = args.provenance or ("min" if args.push else "none")
        name = args.push or "image"
        return attest_image(image, inputs, sbom=sbom, provenance=provenance, name=name)

    return bake_and_attest


def spec_from_args(args: argparse.Namespace):
    """The ImageSpec the flags describe (every parser names its flag on error)."""
    import os

    from scratchd.image import options

    if args.created is not None:
        created = options.parse_created(args.created, what="--created")
    elif os.environ.get("SOURCE_DATE_EPOCH"):
        created = options.parse_created(os.environ["SOURCE_DATE_EPOCH"], what="SOURCE_DATE_EPOCH")
    else:
        created = 0
    platform = (
        options.parse_platform(args.platform, what="--platform")
        if args.platform
        else options.host_platform()
    )
    flag = dict(zip(options.IMAGE_OPTIONS, _IMAGE_FLAGS, strict=True))
    return options.image_spec(
        lambda option: getattr(args, flag[option].replace("-", "_")),
        what=lambda option: f"--{flag[option]}",
        created=created,
        revision=args.revision,
        source=args.source,
        platform=platform,
        oci=_format(args) == "oci",
        compression=args.compression,
    )


def _format(args: argparse.Namespace) -> str:
    if args.format:
        return args.format
    return "oci" if args.oci_layout else "docker"


def _tags(args: argparse.Namespace) -> tuple[str, ...]:
    from scratchd.image import options

    if args.docker_archive:
        tags = options.parse_tags(args.tag, what="--tag")
        return tuple(options.check_docker_reference(t, what="--tag") for t in tags)
    return push_tags(args.tag)


def summary(attested, tags) -> dict:
    """What ``--json`` prints: enough to push or verify without reading the blobs.

    ``digest`` is what the tags name: the image index when attestations are
    attached, which then also lists ``manifest`` (the platform manifest,
    whose digest attestations never change) and ``attestation``.
    """
    image = getattr(attested, "image", attested)
    out = {
        "digest": attested.digest,
        "size": len(attested.manifest),
        "mediaType": attested.media_type,
        "config": {"digest": image.config.descriptor.digest, "size": image.config.descriptor.size},
        "layers": [
            {
                "digest": b.descriptor.digest,
                "size": b.descriptor.size,
                "mediaType": b.descriptor.media_type,
            }
            for b in image.layers
        ],
        "tags": list(tags),
    }
    if attested is not image:
        out["manifest"] = {"digest": image.digest, "size": len(image.manifest)}
        out["manifest"]["mediaType"] = image.media_type
        out["attestation"] = {"digest": attested.attestation.digest}
    return out
