"""``scratchd builds``: the latest builds as a table (or JSON)."""

from __future__ import annotations

import argparse
import json

from scratchd.cli.state import add_config_argument, build_duration, load, open_store

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
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace) -> int:
    from scratchd.errors import UsageError
    from scratchd.models import BuildStatus

    for status in args.status or ():
        if status not in BuildStatus.__members__.values():
            choices = ", ".join(s.value for s in BuildStatus)
            raise UsageError(f"unknown status {status!r} (one of {choices})")
    config = load(args)
    store = open_store(config)
    try:
        if args.digest:
            builds = [
                b
                for b in store.builds_with_digest(args.digest)
                if (args.repo is None or b.repo == args.repo)
                and (not args.status or b.status in args.status)
            ][: args.limit]
        else:
            builds = store.list_builds(repo=args.repo, statuses=args.status, limit=args.limit)
    finally:
        store.close()
    engines = _engines_of_builds(config) if config.engines else None
    if args.json:
        records = [b.to_json() for b in builds]
        for record in records if engines is not None else ():
            record["engine"] = engines.get(str(record["id"]))  # type: ignore[union-attr]
        print(json.dumps(records, indent=2))
    else:
        print(format_table(builds, engines))
    return 0


def _engines_of_builds(config) -> dict[str, str]:
    """Which engine ran each recent build, from the daemon's ``engines.json``.

    The reader (and the placement module it lives beside) is imported only
    when the daemon has written the file: an unplaced build shows ``-`` either way.
    """
    path = config.daemon.state_dir / ENGINES_FILE
    if not path.exists():
        return {}
    from scratchd.engine_status import read_status

    return dict(read_status(path).get("builds", {}))


def format_table(builds, engines: dict[str, str] | None = None) -> str:
    """The table; with ``engines`` (``[[engine]]`` configured) an ENGINE column too."""
    table = _format(builds)
    if engines is None:
        return table
    lines = table.split("\n")
    width = max([len("ENGINE"), *(len(v) for v in engines.values())])
    ids = ["ENGINE", *(engines.get(str(b.id), "-") for b in builds)]
    return "\n".join(f"{e.ljust(width)}  {line}" for e, line in zip(ids, lines, strict=True))


def _format(builds) -> str:
    rows = [COLUMNS] + [
        (
            str(b.id),
            b.repo,
            b.branch,
            b.short_sha,
            str(b.status),
            build_duration(b),
            b.images[0] if b.images else "",
        )
        for b in builds
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
