"""``scratchd web``: serve the read-only web page for the daemon named by ``--config``.

The page runs in its own process (and unit, ``scratchd-web.service``): it
reads the state database read-only and never talks to Docker. The bearer
token for ``/api`` and ``/metrics`` is read from a file (a systemd
credential in the unit) so it never appears in ``ps`` or the journal.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from scratchd.cli.state import add_config_argument, load

DEFAULT_BIND = "127.0.0.1:8470"  # the same as scratchd.web.DEFAULT_BIND, without importing it


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "web",
        help="serve the read-only web page, JSON API, badges and /metrics",
        description="Serve the read-only web page (dashboard, builds, live logs), the JSON "
        "API, SSE streams, badges and Prometheus metrics for the daemon's state directory.",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--bind", default=DEFAULT_BIND, metavar="HOST:PORT", help=f"default {DEFAULT_BIND}"
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="PATH",
        help="require 'Authorization: Bearer <contents>' for /api and /metrics "
        "(default: $CREDENTIALS_DIRECTORY/web-token when that exists)",
    )
    parser.set_defaults(handler=run)


def settings_from(config, token: str | None):
    from scratchd.web import RepoSite, WebSettings

    repos = tuple(
        RepoSite(r.name, config.executor_for(r), tuple(r.pipelines)) for r in config.repos
    )
    return WebSettings(
        state_dir=Path(config.daemon.state_dir),
        repos=repos,
        capacity=config.daemon.max_concurrent_builds,
        token=token,
    )


def read_token(path: Path | None) -> str | None:
    from scratchd.errors import UsageError

    if path is None:
        creds = os.environ.get("CREDENTIALS_DIRECTORY")
        candidate = Path(creds) / "web-token" if creds else None
        if candidate is None or not candidate.is_file():
            return None
        path = candidate
    try:
        token = path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read token file {path}: {exc.strerror}") from None
    if not token:
        raise UsageError(f"token file {path} is empty")
    return token


def run(args: argparse.Namespace) -> int:
    import asyncio

    from scratchd.errors import UsageError
    from scratchd.web import serve, split_bind

    try:
        split_bind(args.bind)
    except ValueError:
        raise UsageError(f"--bind must be HOST:PORT, not {args.bind!r}") from None
    settings = settings_from(load(args), read_token(args.token_file))
    try:
        asyncio.run(serve(settings, args.bind, ready=lambda url: print(url, flush=True)))
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.bind}: {exc.strerror}") from None
    return 0
