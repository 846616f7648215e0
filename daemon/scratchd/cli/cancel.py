"""``scratchd cancel BUILD_ID``: stop a queued build now, ask the daemon to stop a running one."""

from __future__ import annotations

import argparse

from scratchd.cli.state import add_config_argument, load, open_store


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "cancel",
        help="cancel a queued or running build",
        description="A queued build is cancelled at once; a running one is flagged and the "
        "daemon stops it within about a second.",
    )
    add_config_argument(parser)
    parser.add_argument("build_id", type=int, metavar="BUILD_ID")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scratchd.models import BuildStatus
    from scratchd.store import StateDir
    from scratchd.store.wake import ring

    config = load(args)
    store = open_store(config)
    try:
        before = store.get(args.build_id)
        build = store.request_cancel(args.build_id)
    finally:
        store.close()
    ring(StateDir(config.daemon.state_dir).root)
    if build.status == BuildStatus.RUNNING:
        print(f"build {build.id}: cancel requested; the daemon stops it shortly")
        return 0
    if build.status == BuildStatus.CANCELLED and before and before.status != build.status:
        print(f"build {build.id}: cancelled")
        return 0
    print(f"build {build.id}: already {build.status}; nothing to cancel")
    return 1
