"""``scratchd builds``: the latest builds as a table (or JSON).

A person waits for this command, so it loads only what a listing needs:
the command line is read without argparse when it is plain
(:mod:`scratchd.cli.quick`), the config file for its state directory only
(:mod:`scratchd.config.peek`), the database read-only as plain rows
(:mod:`scratchd.store.reader`), and no logging is set up (nothing here logs).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import TYPE_CHECKING

from scratchd.cli.quick import Option, parse_plain
from scratchd.cli.state import add_config_argument, duration_text

if TYPE_CHECKING:
    import argparse

#: ``scratchd.engine_status.FILE_NAME``, named here so a missing file costs no import.
ENGINES_FILE = "engines.json"
COLUMNS = ("ID", "REPO", "BRANCH", "COMMIT", "STATUS", "DURATION", "IMAGE")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "builds", help="list recent builds", description="List recent builds, newest first."
    )
    add_config_argument(parser)
    parser.add_argument("--repo", metavar="R", help="only builds of this repository")
    parser.add_argument(
        "--status", action="append", metavar="S", help="only builds with this status (repeatable)"
    )
    parser.add_argument(
        "--digest", metavar="D",
        help="only the builds that pushed this digest (an image index or a platform manifest)",
    )  # fmt: skip
    parser.add_argument("--limit", type=_positive, default=20, metavar="N", help="default 20")
    parser.add_argument("--json", action="store_true", help="one JSON array of build records")
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        import argparse

        raise argparse.ArgumentTypeError("must be at least 1")
    return value


#: The options of :func:`register`, for :func:`quick_args`; a test keeps the two alike.
OPTIONS = {
    "--config": Option("config", "value"),
    "--repo": Option("repo", "value"),
    "--status": Option("status", "append"),
    "--digest": Option("digest", "value"),
    "--limit": Option("limit", "value", _positive),
    "--json": Option("json", "flag"),
}
DEFAULTS = {"config": None, "repo": None, "status": None, "digest": None, "limit": 20}


def quick_args(words: list[str]) -> SimpleNamespace | None:
    """The arguments of ``scratchd builds WORDS`` when plain; ``None``: ask argparse."""
    values = parse_plain(words, OPTIONS, {**DEFAULTS, "json": False})
    if values is None:
        return None
    return SimpleNamespace(command="builds", verbose=0, handler=run, **values)


def run(args: argparse.Namespace | SimpleNamespace) -> int:
    from scratchd.build_status import BuildStatus
    from scratchd.config.peek import default_config_file, state_location
    from scratchd.errors import UsageError
    from scratchd.store.reader import DB_FILE, WITH_DIGEST, builds_query, read_builds

    for status in args.status or ():
        if status not in BuildStatus.__members__.values():
            choices = ", ".join(s.value for s in BuildStatus)
            raise UsageError(f"unknown status {status!r} (one of {choices})")
    state_dir, engines_configured = state_location(args.config or default_config_file())
    db = os.path.join(state_dir, DB_FILE)
    if args.digest:
        builds = [
            b
            for b in read_builds(db, WITH_DIGEST, (args.digest,))
            if (args.repo is None or b["repo"] == args.repo)
            and (not args.status or b["status"] in args.status)
        ][: args.limit]
    else:
        builds = read_builds(
            db, *builds_query(repo=args.repo, statuses=args.status, limit=args.limit)
        )
    engines = _engines_of_builds(state_dir) if engines_configured else None
    if args.json:
        import json

        for record in builds if engines is not None else ():
            record["engine"] = engines.get(str(record["id"]))  # type: ignore[union-attr]
        print(json.dumps(builds, indent=2))
    else:
        print(format_table(builds, engines))
    return 0


def _engines_of_builds(state_dir: str) -> dict[str, str]:
    """Which engine ran each recent build, from the daemon's ``engines.json``.

    The reader (and the placement module it lives beside) is imported only
    when the daemon has written the file: an unplaced build shows ``-`` either way.
    """
    path = os.path.join(state_dir, ENGINES_FILE)
    if not os.path.exists(path):
        return {}
    from pathlib import Path

    from scratchd.engine_status import read_status

    return dict(read_status(Path(path)).get("builds", {}))


def format_table(builds: list[dict[str, object]], engines: dict[str, str] | None = None) -> str:
    """The table of build rows; with ``engines`` (``[[engine]]`` configured) an ENGINE column."""
    table = _format(builds)
    if engines is None:
        return table
    lines = table.split("\n")
    width = max([len("ENGINE"), *(len(v) for v in engines.values())])
    ids = ["ENGINE", *(engines.get(str(b["id"]), "-") for b in builds)]
    return "\n".join(f"{e.ljust(width)}  {line}" for e, line in zip(ids, lines, strict=True))


def _format(builds: list[dict[str, object]]) -> str:
    rows = [COLUMNS] + [
        (
            str(b["id"]),
            str(b["repo"]),
            str(b["branch"]),
            str(b["sha"])[:8],
            str(b["status"]),
            duration_text(b["started_at"], b["finished_at"]),  # type: ignore[arg-type]
            str(b["images"][0]) if b["images"] else "",  # type: ignore[index]
        )
        for b in builds
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
