"""``scratchd lint [FILE]``: check a wercker.yml without running anything."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "lint",
        help="check a wercker.yml",
        description="Print FILE:LINE:COL: message for every error and warning of a "
        "wercker.yml; exit 1 if there are errors.",
    )
    parser.add_argument("file", nargs="?", default="wercker.yml", help="default: ./wercker.yml")
    parser.add_argument(
        "--strict", action="store_true", help="treat warnings as errors (exit 1 on any finding)"
    )
    parser.add_argument(
        "--secrets-file",
        metavar="FILE",
        help="the K=V secrets file builds get: warn when one of its variables would go "
        "into an image config",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scratchd.pipeline.lint import lint_file

    names: frozenset[str] = frozenset()
    if args.secrets_file:
        from scratchd.pipeline.secrets import load_secrets_file

        names = frozenset(load_secrets_file(args.secrets_file))
    found = lint_file(Path(args.file), names)
    for diagnostic in found:
        print(diagnostic.format(args.file))
    failing = found if args.strict else [d for d in found if d.severity == "error"]
    return 1 if failing else 0
