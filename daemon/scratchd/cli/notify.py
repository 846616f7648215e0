"""``scratchd notify test --sink NAME``: send one sample event to a configured sink now.

It goes straight to the sink (no outbox, no retries), so its success or its
error is the answer to "is this sink set up right?". The daemon's wiring for
notifications (commit facts from git) lives here too, next to the command
that shares it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from scratchd.cli.state import add_config_argument

if TYPE_CHECKING:
    from scratchd.config import Config


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "notify",
        help="notification tools: send a sample event to a sink",
        description="Send a sample build.finished event to one configured sink, now.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    test = actions.add_parser("test", help="send a sample event to --sink NAME")
    add_config_argument(test)
    test.add_argument("--sink", required=True, metavar="NAME", help="the sink's name")
    test.add_argument("--repo", default="example", help="repository name in the sample")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scratchd.cli.state import load
    from scratchd.errors import UsageError
    from scratchd.notify import make_sink, send_sample

    config = load(args)
    sink = config.notify.sink(args.sink)
    if sink is None:
        known = ", ".join(s.name for s in config.notify.sinks) or "none configured"
        raise UsageError(f"no sink named {args.sink!r} (known: {known})")
    args.masker.add(*make_sink(sink).secrets())  # the log handler's masker
    event_id = send_sample(sink, web_url=config.notify.web_url, repo=args.repo)
    print(f"sent a sample build.finished to {sink.name} ({sink.type}), webhook-id {event_id}")
    return 0


def commit_facts(config: Callable[[], Config]) -> Callable[[str, str], dict[str, str]]:
    """``(repo, sha) -> {"subject", "author", "email"}`` read from the watched repository."""

    def facts(repo: str, sha: str) -> dict:
        import pygit2

        from scratchd.git.refs import open_repository

        settings = config().repo(repo)
        if settings is None:
            return {}
        commit = open_repository(settings.path)[sha].peel(pygit2.Commit)
        subject = commit.message.strip().splitlines()[0] if commit.message.strip() else ""
        return {"subject": subject, "author": commit.author.name, "email": commit.author.email}

    return facts
