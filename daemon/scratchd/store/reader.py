"""Reading builds without writing a byte: ``scratchd builds`` on any state directory.

:class:`~scratchd.store.Store` opens the database for writing, sets its
pragmas and migrates an old schema, which a listing needs none of; it also
failed on a state directory the reader may not write. This module opens the
file read-only (``mode=ro``) and hands out plain dicts, the shape of
``BuildRecord.to_json``, so a listing loads neither the records nor the
shared models (their dataclasses cost more than the query).

WAL mode has a catch: a read-only connection cannot create the ``-wal`` and
``-shm`` files, and where it may create them it leaves them behind (owned by
whoever ran the command, which can lock the daemon's user out). They exist
while any connection has the database open. So with a ``-wal`` file the read
goes through it (``mode=ro``, consistent with the running daemon); without
one nobody has the database open and the file itself is read
(``immutable=1``, no side files) under SQLite's SHARED lock, taken by hand:
a writer that opens the database meanwhile cannot checkpoint into the file
or remove its ``-wal``, so the ``-wal`` is there afterwards, and the read is
done again through it.

A database of a newer schema is refused with the writers' message; an older
one is migrated by :class:`~scratchd.store.db.Database` first, as every
command did before.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence

from scratchd.errors import StoreError
from scratchd.store.schema import SCHEMA_VERSION, newer_schema

DB_FILE = "scratchd.db"  # in the state directory (see StateDir)
#: Where SQLite's unix VFS takes its SHARED lock: ``SHARED_FIRST`` = ``PENDING_BYTE + 2``.
SHARED_FIRST, SHARED_SIZE = 0x40000000 + 2, 510
#: ``Store.builds_with_digest``'s query: the builds that pushed one digest, newest first.
WITH_DIGEST = "WHERE id IN (SELECT build_id FROM image_digests WHERE digest=?) ORDER BY id DESC"


def builds_query(
    *,
    repo: str | None = None,
    ref: str | None = None,
    statuses: Collection[str] | None = None,
    limit: int | None = None,
) -> tuple[str, list[object]]:
    """The ``WHERE ... ORDER BY id DESC LIMIT ?`` of a listing, newest first, and its parameters.

    Shared by :meth:`Store.list_builds` and :func:`read_builds` so both walk
    the same index: the rowid backwards, or ``builds_by_repo (repo, id)``.
    """
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (("repo", repo), ("ref", ref)):
        if value is not None:
            clauses.append(f"{column}=?")
            params.append(value)
    if statuses:
        clauses.append(f"status IN ({','.join('?' * len(statuses))})")
        params += [str(s) for s in statuses]
    sql = ("WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


def build_json(row: sqlite3.Row) -> dict[str, object]:
    """A build row as ``BuildRecord.from_row(row).to_json()`` has it, without the record."""
    data = dict(row)
    data["cancel_requested"] = bool(data["cancel_requested"])
    for key in ("images", "tags"):
        text = data.get(key)
        data[key] = json.loads(text) if text and text != "[]" else []
    return data


def read_builds(db: str, where: str, params: Sequence[object]) -> list[dict[str, object]]:
    """``SELECT * FROM builds <where>`` on the database file ``db``, read-only."""
    if not os.path.exists(db):
        raise StoreError(f"no state database at {_shown(db)} (has the daemon run yet?)")
    sql = f"SELECT * FROM builds {where}"  # noqa: S608  # ``where`` is ours, values are bound
    try:
        return _read_builds(db, sql, params)
    except _Migrated:
        return _read_builds(db, sql, params)


class _Migrated(Exception):
    """The schema was older and is now brought up to date: read again."""


def _read_builds(db: str, sql: str, params: Sequence[object]) -> list[dict[str, object]]:
    wal = db + "-wal"
    with _shared_lock(db):
        if not os.path.exists(wal):
            rows = _read(
                db, "mode=ro&immutable=1", sql, params, unchanged=lambda: not os.path.exists(wal)
            )
            if rows is not None:
                return [build_json(r) for r in rows]
    rows = _read(db, "mode=ro", sql, params)
    assert rows is not None
    return [build_json(r) for r in rows]


@contextlib.contextmanager
def _shared_lock(db: str) -> Iterator[None]:
    """SQLite's own SHARED lock on the file, as its unix VFS takes it, held by this block.

    No checkpoint can write the file, nor remove the ``-wal``, while it is held
    (both take the EXCLUSIVE lock), so a writer that opens the database
    meanwhile leaves its ``-wal`` for :func:`_read_builds` to see. POSIX
    drops the lock when *any* descriptor of the file in this process closes,
    so the check is made before the reading connection closes.
    """
    try:
        fd = os.open(db, os.O_RDONLY)
    except OSError as exc:
        raise StoreError(f"state database {_shown(db)}: {exc.strerror}") from exc
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH, SHARED_SIZE, SHARED_FIRST)  # waits out a checkpoint
        yield
    finally:
        os.close(fd)


def _read(
    db: str,
    mode: str,
    sql: str,
    params: Sequence[object],
    unchanged: Callable[[], bool] = lambda: True,
) -> list[sqlite3.Row] | None:
    """The rows, or ``None`` when ``unchanged()`` says another process wrote meanwhile."""
    try:
        conn = sqlite3.connect(_uri(db, mode), uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise StoreError(f"state database {_shown(db)}: {exc}") from exc
    try:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise newer_schema(_shown(db), version)
        if version < SCHEMA_VERSION:
            conn.close()
            _migrate(db)
            raise _Migrated
        conn.row_factory = sqlite3.Row
        rows: list[sqlite3.Row] = conn.execute(sql, params).fetchall()
        return rows if unchanged() else None
    except sqlite3.Error as exc:
        raise StoreError(f"state database {_shown(db)}: {exc}") from exc
    finally:
        conn.close()


def _migrate(db: str) -> None:
    """An older schema: brought up to date by the writers' code, as before this reader."""
    from pathlib import Path

    from scratchd.store.db import Database

    Database(Path(db), create=False).close()


def _uri(path: str, query: str) -> str:
    """An absolute ``file:`` URI; ``%``, ``?`` and ``#`` are the characters SQLite decodes."""
    text = os.path.abspath(path).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return f"file://{text}?{query}"


def _shown(path: str) -> str:
    """The path as the writers' messages show it (a :class:`~pathlib.Path`)."""
    from pathlib import Path

    return str(Path(path))
