"""The state database (stdlib sqlite3, WAL) and the state directory layout.

``Store(StateDir(state_dir).db)`` is shared by the daemon and the CLI
commands. New queued builds and cancel requests written by one process are
seen by another on its next read; a command that wrote rings the daemon's
FIFO (:mod:`scratchd.store.wake`) so it calls ``claim_next`` /
``cancel_requests`` at once, and ``store.data_version()`` (it changes whenever
another connection commits) is its slow safety net. A daemon holds
:class:`DaemonLock` on the state dir for its life: that lock is also how
``scratchd status`` knows it is alive.

The names below are imported on first use (:mod:`scratchd.lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scratchd.lazy import lazy_exports

if TYPE_CHECKING:
    from scratchd.store.lock import DaemonLock, daemon_alive
    from scratchd.store.logs import BuildLog, compress_log, follow_log, read_log
    from scratchd.store.records import BuildRecord, DaemonInfo, StateDir
    from scratchd.store.retention import prune_builds
    from scratchd.store.schema import SCHEMA_VERSION
    from scratchd.store.store import Store

#: Public name → the module that defines it.
_HOME = {
    "SCHEMA_VERSION": "scratchd.store.schema",
    "BuildLog": "scratchd.store.logs",
    "BuildRecord": "scratchd.store.records",
    "DaemonInfo": "scratchd.store.records",
    "DaemonLock": "scratchd.store.lock",
    "StateDir": "scratchd.store.records",
    "Store": "scratchd.store.store",
    "compress_log": "scratchd.store.logs",
    "daemon_alive": "scratchd.store.lock",
    "follow_log": "scratchd.store.logs",
    "prune_builds": "scratchd.store.retention",
    "read_log": "scratchd.store.logs",
}

__all__ = [
    "SCHEMA_VERSION",
    "BuildLog",
    "BuildRecord",
    "DaemonInfo",
    "DaemonLock",
    "StateDir",
    "Store",
    "compress_log",
    "daemon_alive",
    "follow_log",
    "prune_builds",
    "read_log",
]


__getattr__ = lazy_exports(__name__, _HOME)
