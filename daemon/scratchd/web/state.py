"""Read-only access to the daemon's state database.

The web process never writes: it opens ``scratchd.db`` with a
``file:...?mode=ro`` URI, so a bug here cannot corrupt the queue, and SQLite
refuses any write at the C level. Each worker thread keeps its connection
between requests (opening one and reading the schema costs milliseconds,
a good part of a page's budget on a busy machine) as long as the file is the
same file: a database recreated underneath (another inode) is reopened on
the next request, so there is no stale handle.

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
        conn = None
        try:
            conn = self._connection()
            self._local.conn = conn
            conn.execute("BEGIN")  # one read transaction: a page's queries see one state
            yield conn
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            self._forget()
            raise StateUnavailable(f"state database unreadable: {exc}") from exc
        finally:
            self._local.conn = None

    def _connection(self) -> sqlite3.Connection:
        """This thread's kept connection if it still reads the file at the path, else a new one.

        An ``immutable`` one (daemon stopped, no ``-wal``) is never kept: the
        daemon may start writing at any moment, and that mode would not see it.
        """
        path = self.dirs.db
        try:
            st = path.stat()
        except OSError:
            self._forget()
            raise StateUnavailable("no state database yet (has the daemon run?)") from None
        # The kept connection's open descriptor keeps its inode alive, so a new file at the
        # path never reuses that inode number: a changed identity means another file.
        identity = (st.st_dev, st.st_ino)
        kept = getattr(self._local, "kept", None)
        if kept is not None and kept[0] == identity:
            return kept[1]
        self._forget()
        conn, keep = self._open(path)
        self._local.kept = (identity, conn) if keep else None
        if not keep:
            self._local.once = conn  # closed by the next _forget
        return conn

    def _forget(self) -> None:
        for name in ("kept", "once"):
            held = getattr(self._local, name, None)
            setattr(self._local, name, None)
            if held is not None:
                (held[1] if isinstance(held, tuple) else held).close()

    @staticmethod
    def _open(path: Path) -> tuple[sqlite3.Connection, bool]:
        """A read-only connection, and whether it may be kept for later requests."""
        quoted = urllib.parse.quote(str(path))
        keep = True
        try:
            conn = sqlite3.connect(
                f"file:{quoted}?mode=ro", uri=True, timeout=5, isolation_level=None
            )
            conn.execute("SELECT 1 FROM builds LIMIT 1")
        except sqlite3.OperationalError:
            if Path(f"{path}-wal").exists():
                raise
            conn = sqlite3.connect(f"file:{quoted}?immutable=1", uri=True, isolation_level=None)
            keep = False
        conn.row_factory = sqlite3.Row
        return conn, keep

    # -- builds ---------------------------------------------------------------

    def build(self, build_id: int) -> BuildRecord | None:
        with self.connect() as conn:
            row = conn.execute("SELECT * FROM builds WHERE id=?", (build_id,)).fetchone()
        return BuildRecord.from_row(row) if row else None

    def builds_by_id(self, ids: list[int]) -> dict[int, BuildRecord]:
        """The builds of ``ids`` that exist, by id (one query)."""
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        with self.connect() as conn:
            rows = conn.execute(f"SELECT * FROM builds WHERE id IN ({marks})", ids).fetchall()  # noqa: S608
        return {r["id"]: BuildRecord.from_row(r) for r in rows}

    def builds(
        self, where: str = "", params: tuple | list = (), limit: int = 50
    ) -> list[BuildRecord]:
        """Newest first; ``where`` is built by this package only, values go in ``params``."""
        return [BuildRecord.from_row(r) for r in self._newest(where, params, limit)]

    def builds_json(
        self, where: str = "", params: tuple | list = (), limit: int = 50
    ) -> list[dict]:
        """:meth:`builds` as the pages and the API show them (``to_json`` dicts), cheaper."""
        return [BuildRecord.row_json(r) for r in self._newest(where, params, limit)]

    def _newest(self, where: str, params: tuple | list, limit: int) -> list[sqlite3.Row]:
        sql = f"SELECT * FROM builds {where} ORDER BY id DESC LIMIT ?"  # noqa: S608
        with self.connect() as conn:
            return conn.execute(sql, (*params, limit)).fetchall()

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

    def branch_heads(self, repo: str) -> list[dict]:
        """The newest build of every branch of ``repo``, as ``to_json`` dicts.

        A skip-scan of the (repo, branch, id) index: one probe per branch for
        its name and one for its newest id. ``GROUP BY branch`` read every
        index entry of the repository instead, which grows with its history.
        """
        with self.connect() as conn:
            rows = conn.execute(
                "WITH RECURSIVE b(branch) AS (SELECT min(branch) FROM builds WHERE repo=:r"
                " UNION ALL SELECT (SELECT min(branch) FROM builds WHERE repo=:r"
                " AND branch > b.branch) FROM b WHERE b.branch IS NOT NULL)"
                " SELECT builds.* FROM b JOIN builds ON builds.id ="
                " (SELECT max(id) FROM builds WHERE repo=:r AND branch=b.branch)"
                " ORDER BY b.branch",
                {"r": repo},
            ).fetchall()
        return [BuildRecord.row_json(r) for r in rows]

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
