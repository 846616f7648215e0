"""The connection layer: one SQLite connection per thread, WAL, explicit transactions.

Several processes share the database (the daemon and every ``scratchd``
command), so every write is a short ``BEGIN IMMEDIATE`` transaction: the
write lock is taken up front and a competing writer waits on
``busy_timeout`` instead of failing half-way.

``synchronous=NORMAL``: a commit is in the WAL (the OS's page cache) when
``COMMIT`` returns, so it survives ``kill -9`` of any process; the disk is
flushed at checkpoints. ``FULL`` flushed at every commit, and on a busy or
shared disk one flush took 25-400 ms with the write lock held: the watcher's
enqueue and the main loop's claim waited behind the builds' log and outbox
writes, the whole tail of commit → running. What power loss can cost is the
last few transactions, rolled back together (a queued job *with* its ref's
last-seen sha, a claim, an outcome): the watcher finds the commit again and
start-up recovery re-queues a build that was running, so no commit is lost
and no unfinished build reads as passed.

Within one process, writers queue on a lock of their own before ``BEGIN
IMMEDIATE``: SQLite's busy handler *sleeps* between retries (1, 2, 5, 10,
... ms), so a thread that found another thread's transaction open waited
up to tens of milliseconds after it ended, the tail of commit → running.
A thread waiting on the lock runs the moment it is released, and an
*urgent* writer (the watcher queueing a commit, the main loop claiming it)
goes before builds already waiting with their log and outbox writes.

Checkpoints (copying the WAL into the database file, and the flushes that
come with them) are kept off that path too: SQLite's automatic checkpoint
runs inside whichever ``COMMIT`` finds the WAL long enough, flushing the
whole WAL and the database file with the write turn held: the flush that
``synchronous=NORMAL`` took out of every commit, now in one of them. So
connections never checkpoint by themselves; every :data:`CHECKPOINT_EVERY`
non-urgent writes, the writer runs a passive checkpoint after giving its
turn back (it blocks no other writer). The last connection to close
checkpoints whatever is left, as SQLite always does.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from scratchd.errors import StoreError
from scratchd.store.schema import migrate

#: Non-urgent writes between checkpoints: at a few WAL pages each, about
#: SQLite's own default of a checkpoint per 1,000 pages.
CHECKPOINT_EVERY = 200


class Database:
    """Hands each thread its own connection to one database file."""

    def __init__(self, path: Path, *, create: bool = True, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writers = _Writers()  # this process's writers, one at a time (see above)
        self._writes = 0  # non-urgent ones, for the next checkpoint
        if not create and not self.path.exists():
            raise StoreError(f"no state database at {self.path} (has the daemon run yet?)")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._errors():
            migrate(self.conn(), str(self.path))

    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def _connect(self) -> sqlite3.Connection:
        with self._errors():
            conn = sqlite3.connect(
                self.path,
                timeout=self._busy_timeout,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # only so close() can close every thread's
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # see the module docstring
            conn.execute("PRAGMA foreign_keys = ON")
        return conn

    @contextlib.contextmanager
    def write(self, *, urgent: bool = False) -> Iterator[sqlite3.Connection]:
        """A write transaction holding the database's write lock from the start.

        ``urgent``: on the path from a commit to its build; it goes before the
        other writers of this process that are waiting.
        """
        conn = self.conn()
        with self._writers.turn(urgent), self._errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if not urgent:
            self._checkpoint_now_and_then(conn)

    def _checkpoint_now_and_then(self, conn: sqlite3.Connection) -> None:
        """A passive checkpoint every :data:`CHECKPOINT_EVERY` calls, outside the write turn.

        A failure is left to the next one: the write before it has committed.
        """
        with self._lock:
            self._writes += 1
            due = self._writes % CHECKPOINT_EVERY == 0
        if due:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def read(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._errors():
            return self.conn().execute(sql, params).fetchall()

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"state database {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()


class _Writers:
    """One writer of this process at a time; waiting urgent writers go first.

    Re-entrant for its holder: a nested write still fails in SQLite as
    before, it never deadlocks here.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._urgent = 0  # urgent writers waiting

    @contextlib.contextmanager
    def turn(self, urgent: bool) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                self._urgent += urgent
                try:
                    self._cond.wait_for(
                        lambda: self._owner is None and (urgent or not self._urgent)
                    )
                finally:
                    self._urgent -= urgent
                    if urgent:  # given up or granted: writers held back by it look again
                        self._cond.notify_all()
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._cond.notify_all()
