"""read_builds: the store's listings, read-only, as plain rows; nothing written."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from scratchd.errors import StoreError
from scratchd.models import Commit, Trigger
from scratchd.store import SCHEMA_VERSION, StateDir, Store
from scratchd.store import reader as reader_module
from scratchd.store.reader import WITH_DIGEST, builds_query, read_builds
from scratchd.store.schema import MIGRATIONS, statements

DIGEST = "sha256:" + "1" * 64


def commit(n: int, repo: str = "app", ref: str = "refs/heads/main") -> Commit:
    return Commit(repo=repo, ref=ref, sha=f"{n:040x}")


@pytest.fixture
def db(tmp_path) -> Path:
    """Passed, failed, queued builds of two repositories; the store closed (no ``-wal``)."""
    path = StateDir(tmp_path / "state").db
    store = Store(path)
    for n in range(1, 7):
        store.enqueue([commit(n, repo="app" if n % 2 else "lib")], Trigger.PUSH)
        job = store.claim_next(max_running=1, now=1000.0 + n)
        if n % 3:
            store.mark_passed(job.id, [f"reg/app:{n}", DIGEST], now=1010.0 + n, tags=[f"app:{n}"])
        else:
            store.mark_failed(job.id, "step 'x' failed", now=1010.0 + n)
    store.enqueue([commit(9)], Trigger.MANUAL)
    store.close()
    return path


def snapshot(directory: Path) -> dict[str, tuple[int, int, str]]:
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in sorted(directory.iterdir())
    }


QUERIES = [
    {},
    {"limit": 3},
    {"repo": "app", "limit": 20},
    {"statuses": ["failed", "queued"]},
    {"repo": "lib", "statuses": ["passed"], "limit": 1},
]


@pytest.mark.parametrize("query", QUERIES)
def test_the_rows_are_the_stores_records_as_json(db, query):
    store = Store(db, create=False)
    expected = [b.to_json() for b in store.list_builds(**query)]
    store.close()
    assert read_builds(str(db), *builds_query(**query)) == expected
    assert expected  # every query finds something


def test_builds_with_a_digest(db):
    store = Store(db, create=False)
    expected = [b.to_json() for b in store.builds_with_digest(DIGEST)]
    store.close()
    assert read_builds(str(db), WITH_DIGEST, (DIGEST,)) == expected
    assert len(expected) == 4


def test_writes_nothing(db):
    """No ``-wal``/``-shm`` left behind (they would belong to whoever ran the command)."""
    before = snapshot(db.parent)
    assert set(before) == {"scratchd.db"}
    read_builds(str(db), *builds_query(limit=20))
    assert snapshot(db.parent) == before


def test_reads_through_the_running_daemons_wal(db):
    store = Store(db)  # as the daemon: its connection keeps -wal and -shm
    (queued,) = store.enqueue([commit(10)], Trigger.PUSH)
    assert Path(f"{db}-wal").stat().st_size > 0
    rows = read_builds(str(db), *builds_query(limit=1))
    store.close()
    assert [r["id"] for r in rows] == [queued.id]


WRITER = """
import sys
from pathlib import Path
from scratchd.models import Commit, Trigger
from scratchd.store import Store
store = Store(Path(sys.argv[1]))
store.enqueue([Commit("app", "refs/heads/main", f"{11:040x}")], Trigger.PUSH)
store.close()
"""


def test_a_writer_during_the_read_gets_the_read_done_again(db, monkeypatch):
    """The file was read as immutable; a writer that opened it meanwhile makes that read void.

    The writer cannot checkpoint into the file nor remove its ``-wal`` while
    the reader holds SQLite's SHARED lock, so the ``-wal`` tells. (Another
    process: POSIX locks never stop their own process.)
    """
    real, modes = reader_module._read, []

    def racing(path, mode, sql, params, unchanged=lambda: True):
        def write_then_check():
            subprocess.run([sys.executable, "-c", WRITER, str(db)], check=True, timeout=60)
            return unchanged()

        modes.append(mode)
        return real(path, mode, sql, params, write_then_check if len(modes) == 1 else unchanged)

    monkeypatch.setattr(reader_module, "_read", racing)
    rows = read_builds(str(db), *builds_query(limit=1))
    assert modes == ["mode=ro&immutable=1", "mode=ro"]
    assert rows[0]["sha"] == f"{11:040x}"
    assert Path(f"{db}-wal").exists()  # left by the writer: the reader's lock held it


def test_a_newer_schema_is_refused_as_the_writers_do(db):
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as writers:
        Store(db, create=False)
    with pytest.raises(StoreError) as readers:
        read_builds(str(db), *builds_query())
    assert str(readers.value) == str(writers.value)
    assert "newer than this scratchd understands" in str(readers.value)


def test_an_older_schema_is_migrated_first_as_before(tmp_path):
    path = tmp_path / "scratchd.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    for step in MIGRATIONS[:3]:
        for statement in statements(step):
            conn.execute(statement)
    conn.execute(
        "INSERT INTO builds (repo, ref, branch, sha, trigger, status, created_at)"
        " VALUES ('app', 'refs/heads/main', 'main', ?, 'push', 'queued', 1.0)",
        ("a" * 40,),
    )
    conn.execute("PRAGMA user_version = 3")
    conn.close()
    (row,) = read_builds(str(path), *builds_query())
    assert (row["sha"], row["tags"]) == ("a" * 40, [])
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_no_database(tmp_path):
    with pytest.raises(StoreError, match=r"no state database at .*has the daemon run yet"):
        read_builds(str(tmp_path / "scratchd.db"), *builds_query())
    assert not (tmp_path / "scratchd.db").exists()


def test_not_a_database(tmp_path):
    path = tmp_path / "scratchd.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=f"state database {path}: "):
        read_builds(str(path), *builds_query())


@pytest.mark.parametrize(
    ("query", "index"), [({"limit": 20}, None), ({"repo": "app", "limit": 20}, "builds_by_repo")]
)
def test_listings_walk_an_index_and_sort_nothing(db, query, index):
    """``builds`` walks the rowid backwards, ``--repo`` its index: LIMIT stops either early."""
    sql, params = builds_query(**query)
    conn = sqlite3.connect(db)
    explain = f"EXPLAIN QUERY PLAN SELECT * FROM builds {sql}"  # noqa: S608  # builds_query's
    plan = [r[3] for r in conn.execute(explain, params)]
    conn.close()
    assert not any("TEMP B-TREE" in step for step in plan), plan
    if index:
        assert any(f"USING INDEX {index} (repo=?)" in step for step in plan), plan
    else:
        assert plan == ["SCAN builds"]
