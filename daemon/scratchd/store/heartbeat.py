"""The daemon's heartbeat row, read by ``scratchd status``."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence

from scratchd.store.db import Database
from scratchd.store.records import DaemonInfo


class HeartbeatMixin:
    """Part of :class:`~scratchd.store.Store`; needs ``self.db``."""

    db: Database

    def heartbeat(
        self,
        status: str,
        repos: Sequence[str] = (),
        *,
        started_at: float,
        config_path: str = "",
        pid: int | None = None,
    ) -> None:
        """Record that the daemon is alive (call every few seconds)."""
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO daemon (id, pid, hostname, started_at, updated_at,"
                " status, repos, config_path) VALUES (1,?,?,?,?,?,?,?)",
                (
                    os.getpid() if pid is None else pid,
                    os.uname().nodename,  # gethostname(), without importing socket
                    started_at,
                    time.time(),
                    status,
                    json.dumps(list(repos)),
                    config_path,
                ),
            )

    def daemon_info(self) -> DaemonInfo | None:
        rows = self.db.read("SELECT * FROM daemon WHERE id=1")
        return DaemonInfo.from_row(rows[0]) if rows else None
