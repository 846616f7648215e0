"""``scratchd push LAYOUT[:TAG] REPOSITORY`` and the ``--push`` options of ``scratchd bake``.

Both end in :func:`push_from_args`, which wires the concrete registry client
from the flags; ``scratchd bake`` calls it after baking. Only argparse is
imported at module level (see :mod:`scratchd.cli`): requests loads inside
the handler.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scratchd.image.types import Image
    from scratchd.models import ImageSpec


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "push",
        help="push an image from an OCI layout to a registry",
        description="Push an already baked image (an OCI layout, e.g. from "
        "`scratchd bake --oci-layout`) to REPOSITORY. Prints the manifest digest.",
    )
    p.add_argument("layout", metavar="OCI_LAYOUT_PATH[:TAG]", help="layout dir, optional tag")
    p.add_argument("repository", metavar="REPOSITORY", help="host[:port]/path, or org/app (Hub)")
    p.add_argument(
        "--tag", action="append", default=[], help="repeatable; spaces/commas split (latest)"
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_push_arguments(p, repository_flag=False)
    p.set_defaults(handler=run)


def add_push_arguments(parser: argparse.ArgumentParser, *, repository_flag: bool = True) -> None:
    """The registry flags; ``scratchd bake`` adds them with ``--push REPOSITORY``."""
    group = parser.add_argument_group("registry")
    if repository_flag:
        group.add_argument("--push", metavar="REPOSITORY", help="push the image to REPOSITORY")
    group.add_argument("--username", help="registry user (Quay robots: org+name)")
    group.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    group.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="allow plain HTTP / unverified TLS for this registry (repeatable)",
    )
    group.add_argument("--ca-file", metavar="PEM", help="trust these CA certificates for TLS")
    group.add_argument(
        "--retries", type=int, default=5, metavar="N", help="retries per request (default 5)"
    )


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from scratchd.image.oci_layout import read_oci_layout

    path, tag = _split_layout(args.layout)
    image = read_oci_layout(Path(path), tag)
    result = push_from_args(args, image, push_tags(args.tag), args.repository)
    print(json.dumps(result, indent=2) if args.json else result["digest"])
    return 0


def push_from_args(args: argparse.Namespace, image, tags, repository: str | None = None) -> dict:
    """Push ``image`` as the flags say; returns :meth:`PushResult.to_json`."""
    from scratchd.registry.client import RegistryClient
    from scratchd.registry.credentials import CredentialStore
    from scratchd.registry.progress import ProgressPrinter
    from scratchd.registry.reference import parse_repository
    from scratchd.registry.retry import RetryPolicy

    ref = parse_repository(repository or args.push)
    explicit = _explicit_credentials(args, ref.registry)
    progress = None
    if not args.json:
        progress = ProgressPrinter(sys.stderr, tty=sys.stderr.isatty())
    if args.retries < 0:
        from scratchd.errors import UsageError

        raise UsageError("--retries: must be 0 or more")
    client = RegistryClient(
        CredentialStore(explicit=explicit),
        insecure=args.insecure_registry,
        ca_file=args.ca_file,
        retry=RetryPolicy(attempts=args.retries + 1),
        progress=progress,
    )
    return client.push(image, ref, tags).to_json()


def bake_and_push(
    args: argparse.Namespace,
    spec: ImageSpec,
    tags: Sequence[str],
    level: int,
    bake: Callable[..., Image],
) -> tuple[Image, dict]:
    """``scratchd bake DIR --push REPO`` with no layout: blobs live only as long as the push."""
    import tempfile
    from pathlib import Path

    from scratchd.errors import UsageError

    if not args.push:
        raise UsageError("one of --oci-layout, --docker-archive or --push is required")
    with tempfile.TemporaryDirectory(prefix="scratchd-push-") as tmp:
        image = bake(Path(args.dir), spec, Path(tmp), gzip_level=level)
        return image, push_from_args(args, image, tags)


def _explicit_credentials(args: argparse.Namespace, host: str) -> dict:
    from scratchd.errors import UsageError
    from scratchd.models import Secret
    from scratchd.registry.credentials import Credential

    if bool(args.username) != bool(args.password_stdin):
        raise UsageError("--username and --password-stdin go together")
    if not args.username:
        return {}
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: standard input held no password")
    return {host: Credential(args.username, Secret(password), source="--username")}


def _split_layout(text: str) -> tuple[str, str | None]:
    """``path:tag`` unless the whole text names an existing directory."""
    from pathlib import Path

    path, sep, tag = text.rpartition(":")
    if not sep or "/" in tag or Path(text).is_dir():
        return text, None
    return path, tag or None


def push_tags(values: list[str]) -> tuple[str, ...]:
    """``--tag`` values of a push (``latest`` when none), for ``push`` and ``bake --push``."""
    from scratchd.image import options

    return options.parse_tags(values, default=("latest",), what="--tag")
