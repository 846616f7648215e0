"""Several processes and threads on one state database, as daemon and CLI are."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from scratchd.errors import StoreError
from scratchd.models import BuildStatus, Commit, Trigger
from scratchd.store import Store

PER_WRITER = 150
DEADLINE = 60.0  # seconds; every loop below is bounded by this


def _writer(path: str, name: str, count: int) -> None:
    store = Store(Path(path))
    for n in range(count):
        store.enqueue([Commit(name, f"refs/heads/b{n % 7}", f"{n:040x}")], Trigger.PUSH)


def _worker(path: str, expected: int, out) -> None:
    """Claim and pass builds until every expected build is finished."""
    store = Store(Path(path))
    claimed: list[int] = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        build = store.claim_next(max_running=4)
        if build is not None:
            claimed.append(build.id)
            assert store.mark_passed(build.id)
            continue
        if len(store.list_builds(statuses=["passed"])) >= expected:
            break
        time.sleep(0.002)
    out.put(claimed)


def test_two_writers_two_workers_each_build_claimed_once(tmp_path):
    path = str(tmp_path / "state.db")
    Store(Path(path)).close()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    expected = 2 * PER_WRITER
    procs = [
        ctx.Process(target=_writer, args=(path, "alpha", PER_WRITER)),
        ctx.Process(target=_writer, args=(path, "beta", PER_WRITER)),
        ctx.Process(target=_worker, args=(path, expected, out)),
        ctx.Process(target=_worker, args=(path, expected, out)),
    ]
    for p in procs:
        p.start()
    claimed = [out.get(timeout=DEADLINE + 30), out.get(timeout=DEADLINE + 30)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    store = Store(Path(path))
    builds = store.list_builds()
    assert len(builds) == expected
    assert all(b.status == BuildStatus.PASSED for b in builds)
    all_claims = claimed[0] + claimed[1]
    assert sorted(all_claims) == sorted(b.id for b in builds)  # each exactly once
    assert store.integrity_check() == "ok"


def test_threads_share_one_store(tmp_path):
    store = Store(tmp_path / "state.db")
    errors: list[BaseException] = []

    def write(repo: str) -> None:
        try:
            for n in range(50):
                store.enqueue([Commit(repo, "refs/heads/main", f"{n:040x}")], Trigger.PUSH)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(f"r{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE)
    assert errors == []
    assert len(store.list_builds()) == 200
    store.close()


def _endless_writer(path: str, ready) -> None:
    store = Store(Path(path))
    n = 0
    while True:
        store.enqueue([Commit("app", "refs/heads/main", f"{n:040x}")], Trigger.PUSH)
        n += 1
        if n == 20:
            ready.set()


def test_kill_9_mid_write_leaves_a_sound_database(tmp_path):
    path = str(tmp_path / "state.db")
    Store(Path(path)).close()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_endless_writer, args=(path, ready))
    proc.start()
    assert ready.wait(DEADLINE)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    store = Store(Path(path))
    assert store.integrity_check() == "ok"
    builds = store.list_builds()
    assert len(builds) >= 20
    # the last-seen ref and the newest job were committed together
    assert store.get_ref("app", "refs/heads/main") == builds[0].sha


def test_threads_of_one_process_queue_for_writes_instead_of_sleeping_in_sqlite(tmp_path):
    """SQLite's busy handler sleeps between retries (1, 2, 5, 10 ... ms): a thread that met
    another thread's open transaction waited long after it ended. Writers of one process
    wait on a lock instead, so even with no busy timeout at all the second write waits its
    turn rather than failing with "database is locked"."""
    from scratchd.store.db import Database

    db = Database(tmp_path / "state.db", busy_timeout=0.0)
    with db.write() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
    inside, failures = threading.Event(), []

    def second() -> None:
        assert inside.wait(DEADLINE)
        try:
            with db.write() as conn:
                conn.execute("INSERT INTO t VALUES (2)")
        except Exception as exc:  # the failure this test is about
            failures.append(exc)

    other = threading.Thread(target=second)
    other.start()
    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        inside.set()
        time.sleep(0.2)  # the other thread tries to write meanwhile
    other.join(DEADLINE)
    assert failures == []
    assert [r[0] for r in db.read("SELECT n FROM t ORDER BY n")] == [1, 2]
    db.close()


def test_an_urgent_writer_goes_before_writers_already_waiting(tmp_path):
    """The watcher's enqueue and the main loop's claim (urgent) must not queue behind
    builds' log and outbox writes that were waiting first."""
    from scratchd.store.db import Database

    db = Database(tmp_path / "state.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (tag TEXT)")

    def writer(tag: str, urgent: bool) -> threading.Thread:
        def write() -> None:
            with db.write(urgent=urgent) as conn:
                conn.execute("INSERT INTO t VALUES (?)", (tag,))

        thread = threading.Thread(target=write)
        thread.start()
        return thread

    with db.write() as conn:
        conn.execute("INSERT INTO t VALUES ('first')")
        builds = [writer("build", urgent=False)]
        time.sleep(0.2)  # the build's write is waiting for its turn
        builds.append(writer("build", urgent=False))
        commit = writer("commit", urgent=True)
        time.sleep(0.2)
    for thread in [*builds, commit]:
        thread.join(DEADLINE)
    tags = [r[0] for r in db.read("SELECT tag FROM t ORDER BY rowid")]
    assert tags == ["first", "commit", "build", "build"]
    db.close()


def test_a_nested_write_fails_instead_of_deadlocking(tmp_path):
    from scratchd.store.db import Database

    db = Database(tmp_path / "state.db")
    with db.write() as conn:
        conn.execute("CREATE TABLE t (n INTEGER)")
    with pytest.raises(StoreError), db.write(), db.write(urgent=True):
        pass
    with db.write() as conn:  # the turn was given back
        conn.execute("INSERT INTO t VALUES (1)")
    db.close()


def test_urgent_writes_never_checkpoint_and_the_others_do_now_and_then(tmp_path):
    """A checkpoint copies the WAL into the database file (and flushes it): never inside
    the commit path's urgent writes, every CHECKPOINT_EVERY other writes, after the turn."""
    from scratchd.store.db import CHECKPOINT_EVERY, Database

    path = tmp_path / "state.db"
    db = Database(path)
    with db.write() as conn:
        conn.execute("CREATE TABLE t (b BLOB)")
    size = path.stat().st_size
    for _ in range(CHECKPOINT_EVERY + 50):
        with db.write(urgent=True) as conn:
            conn.execute("INSERT INTO t VALUES (zeroblob(1000))")
    assert path.stat().st_size == size  # all of it still only in the WAL
    for _ in range(CHECKPOINT_EVERY):
        with db.write() as conn:
            conn.execute("INSERT INTO t VALUES (zeroblob(10))")
    assert path.stat().st_size > size + CHECKPOINT_EVERY * 1000
    db.close()
