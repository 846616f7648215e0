"""The state database (stdlib sqlite3, WAL) and the state directory layout.

``Store(StateDir(state_dir).db)`` is shared by the daemon and the CLI
commands. New queued builds and cancel requests written by one process are
seen by another on its next read; a daemon notices them cheaply by polling
``store.data_version()`` (it changes whenever another connection commits)
every ~0.2 s, then calling ``claim_next`` / ``cancel_requests``. A daemon
holds :class:`DaemonLock` on the state dir before ``recover_interrupted``.
"""

from scratchd.store.lock import DaemonLock
from scratchd.store.logs import BuildLog, compress_log, follow_log, read_log
from scratchd.store.records import BuildRecord, DaemonInfo, StateDir
from scratchd.store.retention import prune_builds
from scratchd.store.schema import SCHEMA_VERSION
from scratchd.store.store import Store

__all__ = [
    "SCHEMA_VERSION",
    "BuildLog",
    "BuildRecord",
    "DaemonInfo",
    "DaemonLock",
    "StateDir",
    "Store",
    "compress_log",
    "follow_log",
    "prune_builds",
    "read_log",
]
