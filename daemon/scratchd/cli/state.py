"""What the state commands share: ``--config``, loading it, opening the state DB.

``scratchd builds|logs|trigger|cancel|status`` all find the daemon's state
directory through the same config file the daemon reads, so they see (and
write) the very database the running daemon uses.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    from pathlib import Path

    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="PATH",
        help="config file (default: $SCRATCHD_CONFIG, else /etc/scratchd/scratchd.toml)",
    )


def load(args: argparse.Namespace):
    """The config named by ``--config`` or the default path."""
    from scratchd.config import default_config_path, load_config

    return load_config(args.config or default_config_path())


def open_store(config, *, create: bool = False):
    """The state database of ``config``; commands never create one by accident."""
    from scratchd.store import StateDir, Store

    return Store(StateDir(config.daemon.state_dir).db, create=create)


def ago(seconds: float) -> str:
    from scratchd.config import format_duration

    return format_duration(max(0.0, seconds))


def build_duration(build, now: float | None = None) -> str:
    """Finished: run time; running: time so far; otherwise empty."""
    return duration_text(build.started_at, build.finished_at, now)


def duration_text(started: float | None, finished: float | None, now: float | None = None) -> str:
    """:func:`build_duration` of a build's two times (a row, not a record)."""
    if started is None:
        return ""
    end = finished if finished is not None else (now or time.time())
    return ago(end - started)
