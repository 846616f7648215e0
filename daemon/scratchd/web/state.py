"""Read-only access to the daemon's state database.

The web process never writes: it opens ``scratchd.db`` with a
``file:...?mode=ro`` URI, so a bug here cannot corrupt the queue, and SQLite
refuses any write at the C level. A fresh connection per request (cheap:
well under a millisecond) means a daemon restarted or a database recreated
underneath is picked up on the next request, with no stale handle.

When the daemon is stopped and SQLite removed the ``-wal``/``-shm`` files, a
read-only process without write access to the directory cannot open a WAL
database at all; then the file is opened ``immutable=1`` (nobody writes it
while no ``-wal`` exists), which is exactly right until the daemon starts
again and the next request connects normally.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from scratchd.errors import StoreError
from scratchd.models import BuildStatus
from scratchd.store.records import BuildRecord, DaemonInfo, StateDir

FINISHED = tuple(s.value for s in BuildStatus if s.finished)


class StateUnavailable(StoreError):
    """The state database is missing or unreadable (served as 503, never a traceback)."""


class ReadOnlyState:
    """Queries the web page needs; every method opens, reads and closes."""

    def __init__(self, state_dir: Path) -> None:
        self.dirs = StateDir(Path(state_dir))
        self._local = threading.local()

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread; nested uses share it (one per page, one snapshot)."""
        held = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        path = self.dirs.db
        if not path.is_file():
            raise StateUnavailable("no state database yet (has the daemon run?)")
        conn = None
        try:
            conn = self._open(path)
            self._local.conn = conn
            conn.execute("BEGIN")  # one read transaction: a page's queries see one state
            yield conn
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            raise StateUnavailable(f"state database unreadable: {exc}") from exc
        finally:
            self._local.conn = None
            if conn is not None:
                conn.close()

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        quoted = urllib.parse.quote(str(path))
        try:
            conn = sqlite3.connect(
                f"file:{quoted}?mode=ro", uri=True, timeout=5, isolation_level=None
            )
            conn.execute("SELECT 1 FROM builds LIMIT 1")
        except sqlite3.OperationalError:
            if Path(f"{path}-wal").exists():
                raise
            conn = sqlite3.connect(f"file:{quoted}?immutable=1", uri=True, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    # -- builds ---------------------------------------------------------------

    def build(self, build_id: int) -> BuildRecord | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM builds WHERE id=?", (build_id,)).fetchone()
        return BuildRecord.from_row(row) if row else None

    def builds(
        self, where: str = "", params: tuple | list = (), limit: int = 50
    ) -> list[BuildRecord]:
        """Newest first; ``where`` is built by this package only, values go in ``params``."""
        sql = f"SELECT * FROM builds {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        with self.connect() as conn:
            rows = conn.execute(sql, (*params, limit)).fetchall()
        return [BuildRecord.from_row(r) for r in rows]

    def status_builds(self, status: str) -> list[BuildRecord]:
        """Queued or running builds, oldest first (queue order)."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM builds WHERE status=? ORDER BY id", (status,)
            ).fetchall()
        return [BuildRecord.from_row(r) for r in rows]

    def repo_names(self) -> list[str]:
        # A skip-scan of the (repo, id) index: one probe per repository, not one per build.
        with self.connect() as conn:
            rows = conn.execute(
                "WITH RECURSIVE r(repo) AS (SELECT min(repo) FROM builds UNION ALL"
                " SELECT (SELECT min(repo) FROM builds WHERE repo > r.repo) FROM r"
                " WHERE r.repo IS NOT NULL) SELECT repo FROM r WHERE repo IS NOT NULL"
            ).fetchall()
        return [r[0] for r in rows]

    def last_finished(self, repo: str) -> BuildRecord | None:
        marks = ",".join("?" * len(FINISHED))
        found = self.builds(
            f"WHERE repo=? AND status IN ({marks}) AND status<>'cancelled'",
            (repo, *FINISHED),
            limit=1,
        )
        return found[0] if found else None

    def broken_since(self, repo: str) -> BuildRecord | None:
        """The first failed build after the last passed one, when the last result failed."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT * FROM builds WHERE repo=? AND status IN ('failed','error') AND id >"
                " coalesce((SELECT max(id) FROM builds WHERE repo=? AND status='passed'), 0)"
                " ORDER BY id LIMIT 1",
                (repo, repo),
            ).fetchone()
        return BuildRecord.from_row(row) if row else None

    def recent_durations(self, repo: str, count: int = 10) -> list[float]:
        """Run times of the newest passed builds: the ETA of a running one."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT finished_at - started_at FROM builds WHERE repo=? AND status='passed'"
                " AND started_at IS NOT NULL ORDER BY id DESC LIMIT ?",
                (repo, count),
            ).fetchall()
        return [max(0.0, r[0]) for r in rows]

    def branch_heads(self, repo: str) -> list[BuildRecord]:
        """The newest build of every branch of ``repo``."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT * FROM builds WHERE id IN (SELECT max(id) FROM builds WHERE repo=?"
                " GROUP BY branch) ORDER BY branch",
                (repo,),
            ).fetchall()
        return [BuildRecord.from_row(r) for r in rows]

    def success_rate(self, repo: str, window: int = 100) -> tuple[int, int]:
        """(passed, finished) over the newest ``window`` finished builds of ``repo``."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT sum(status='passed'), count(*) FROM (SELECT status FROM builds"
                " WHERE repo=? AND status IN ('passed','failed','error') ORDER BY id DESC"
                " LIMIT ?)",
                (repo, window),
            ).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    # -- daemon and change feed -------------------------------------------------

    def engines(self) -> list[dict]:
        """The daemon's engine pool (``engines.json``): name, up, used, capacity per engine.

        ``[]`` without a pool, or while the file is unreadable: it is a view the
        daemon rewrites on every change, never state the page must have.
        """
        try:
            data = json.loads(self.dirs.engines.read_text())
        except (OSError, ValueError):
            return []
        engines = data.get("engines") if isinstance(data, dict) else None
        return [e for e in engines or [] if isinstance(e, dict) and isinstance(e.get("name"), str)]

    def daemon_info(self) -> DaemonInfo | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM daemon WHERE id=1").fetchone()
        return DaemonInfo.from_row(row) if row else None

    def events_after(self, seq: int, limit: int = 500) -> list[sqlite3.Row]:
        """Change events newer than ``seq``, with the build's repo and branch."""
        with self.connect() as conn:
            return conn.execute(
                "SELECT e.seq, e.build_id, e.status, e.at, b.repo, b.branch FROM build_events e"
                " LEFT JOIN builds b ON b.id = e.build_id WHERE e.seq > ? ORDER BY e.seq LIMIT ?",
                (seq, limit),
            ).fetchall()

    def last_event(self) -> int:
        with self.connect() as conn:
            return int(conn.execute("SELECT coalesce(max(seq), 0) FROM build_events").fetchone()[0])

    def query(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        """A read for :mod:`scratchd.web.metrics`, whose aggregates live beside it."""
        with self.connect() as conn:
            return conn.execute(sql, params).fetchall()
