"""``scratchd logs BUILD_ID [--follow]``: a build's log, live or from the archive."""

from __future__ import annotations

import argparse
import sys

from scratchd.cli.state import add_config_argument, load, open_store


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "logs",
        help="print a build's log",
        description="Print a build's log. With --follow, keep printing until the build ends.",
    )
    add_config_argument(parser)
    parser.add_argument("build_id", type=int, metavar="BUILD_ID")
    parser.add_argument(
        "-f", "--follow", action="store_true", help="wait for new lines until the build ends"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from scratchd.errors import UsageError
    from scratchd.models import BuildStatus
    from scratchd.store import StateDir, follow_log, read_log

    config = load(args)
    store = open_store(config)
    try:
        build = store.get(args.build_id)
        if build is None:
            raise UsageError(f"no build with id {args.build_id}")
        path = Path(
            build.log_path or StateDir(config.daemon.state_dir).log_path(build.repo, build.id)
        )
        if not args.follow:
            text = read_log(path)
            if text is None:
                print(
                    f"scratchd: build {build.id} has no log yet ({build.status})", file=sys.stderr
                )
                return 1
            sys.stdout.write(text)
            return 0

        def done() -> bool:
            current = store.get(build.id)
            return current is None or current.status not in (
                BuildStatus.QUEUED,
                BuildStatus.RUNNING,
            )

        for chunk in follow_log(path, done):
            sys.stdout.write(chunk)
            sys.stdout.flush()
        final = store.get(build.id)
        print(f"-- build {build.id} {final.status if final else 'deleted'}", file=sys.stderr)
        return 0
    finally:
        store.close()
