"""Last-seen sha per (repository, ref): how the daemon knows what arrived while it was down."""

from __future__ import annotations

import sqlite3
import time

from scratchd.store.db import Database


class RefsMixin:
    """Part of :class:`~scratchd.store.Store`; needs ``self.db``."""

    db: Database

    def get_ref(self, repo: str, ref: str) -> str | None:
        rows = self.db.read("SELECT sha FROM refs WHERE repo=? AND ref=?", (repo, ref))
        return rows[0][0] if rows else None

    def refs(self, repo: str) -> dict[str, str]:
        return {r[0]: r[1] for r in self.db.read("SELECT ref, sha FROM refs WHERE repo=?", (repo,))}

    def set_ref(self, repo: str, ref: str, sha: str) -> None:
        with self.db.write() as conn:
            set_ref_in(conn, repo, ref, sha, time.time())


def set_ref_in(conn: sqlite3.Connection, repo: str, ref: str, sha: str, now: float) -> None:
    """Upsert inside the caller's transaction (enqueue moves refs with its jobs)."""
    conn.execute(
        "INSERT INTO refs (repo, ref, sha, updated_at) VALUES (?,?,?,?)"
        " ON CONFLICT (repo, ref) DO UPDATE SET sha=excluded.sha, updated_at=excluded.updated_at",
        (repo, ref, sha, now),
    )
