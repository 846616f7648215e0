"""Store operations against a real SQLite file in tmp."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from scratchd.errors import StoreError, UnknownBuildError
from scratchd.models import BuildStatus, Commit, Trigger
from scratchd.store import SCHEMA_VERSION, StateDir, Store

MAIN = "refs/heads/main"


def sha(n: int) -> str:
    return f"{n:040x}"


def commit(n: int, ref: str = MAIN, repo: str = "app") -> Commit:
    return Commit(repo=repo, ref=ref, sha=sha(n))


@pytest.fixture
def store(tmp_path):
    s = Store(StateDir(tmp_path / "state").db)
    yield s
    s.close()


def statuses(store: Store) -> list[tuple[int, str]]:
    return [(b.id, str(b.status)) for b in reversed(store.list_builds())]


def test_schema_is_versioned_and_pragmas_set(store):
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store.db.conn().execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.integrity_check() == "ok"


def test_commits_do_not_wait_for_the_disk_on_any_thread(store):
    """synchronous=NORMAL (1) on every thread's connection: a flush per commit held the
    write lock for 25-400 ms on a busy disk, in front of the next commit's enqueue and
    claim. kill -9 safety: tests/store/test_concurrency.py."""
    seen = [store.db.conn().execute("PRAGMA synchronous").fetchone()[0]]
    other = threading.Thread(
        target=lambda: seen.append(store.db.conn().execute("PRAGMA synchronous").fetchone()[0])
    )
    other.start()
    other.join(10)
    assert seen == [1, 1]


def test_reopening_keeps_data(tmp_path):
    path = tmp_path / "s.db"
    Store(path).enqueue([commit(1)], Trigger.PUSH)
    again = Store(path)
    assert [b.sha for b in again.list_builds()] == [sha(1)]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "s.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this scratchd"):
        Store(path)


def test_corrupt_file_is_a_store_error(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match=str(path)):
        Store(path)


def test_create_false_needs_an_existing_db(tmp_path):
    with pytest.raises(StoreError, match="no state database"):
        Store(tmp_path / "none.db", create=False)
    assert not (tmp_path / "none.db").exists()


def test_enqueue_writes_rows_and_ref_in_one_go(store):
    (build,) = store.enqueue([commit(1)], Trigger.PUSH, now=100.0)
    assert build.status == BuildStatus.QUEUED and build.trigger == Trigger.PUSH
    assert (build.repo, build.ref, build.branch, build.sha) == ("app", MAIN, "main", sha(1))
    assert build.created_at == 100.0 and build.attempt == 1
    assert store.get_ref("app", MAIN) == sha(1)
    assert store.refs("app") == {MAIN: sha(1)}


def test_enqueue_without_ref_update(store):
    store.enqueue([commit(1)], Trigger.MANUAL, update_ref=False)
    assert store.get_ref("app", MAIN) is None


def test_same_commit_is_not_queued_twice(store):
    first = store.enqueue([commit(1)], Trigger.PUSH)
    again = store.enqueue([commit(1)], Trigger.POLL)
    assert [b.id for b in first] == [b.id for b in again]
    assert len(store.list_builds()) == 1


def test_coalesce_cancels_older_queued_of_the_same_ref(store):
    store.enqueue([commit(1), commit(2)], Trigger.PUSH, coalesce=True)
    store.enqueue([commit(9, "refs/heads/dev")], Trigger.PUSH, coalesce=True)
    store.enqueue([commit(3)], Trigger.PUSH, coalesce=True)
    assert statuses(store) == [(1, "cancelled"), (2, "cancelled"), (3, "queued"), (4, "queued")]
    assert store.get(2).message == f"superseded by {sha(3)}"
    assert store.get_ref("app", MAIN) == sha(3)


def test_without_coalescing_every_commit_stays_queued(store):
    store.enqueue([commit(1), commit(2), commit(3)], Trigger.PUSH)
    assert [s for _, s in statuses(store)] == ["queued"] * 3


def test_claim_respects_global_limit_ref_order_and_retry_time(store):
    store.enqueue([commit(1), commit(2)], Trigger.PUSH)
    store.enqueue([commit(3, "refs/heads/dev")], Trigger.PUSH)
    store.enqueue([commit(4, repo="other")], Trigger.PUSH)
    first = store.claim_next(max_running=2, now=10.0)
    second = store.claim_next(max_running=2, now=10.0)
    assert (first.id, second.id) == (1, 3)  # build 2 waits: its ref is busy
    assert first.status == BuildStatus.RUNNING and first.started_at == 10.0
    assert store.claim_next(max_running=2) is None  # global limit
    assert store.claim_next(max_running=5).id == 4
    assert store.claim_next(max_running=5) is None  # 2 still waits for 1
    assert store.requeue(1, retry_after=50.0, message="retry")
    assert store.claim_next(max_running=5, now=20.0) is None  # 1 backs off; 2 keeps order
    assert store.next_retry_at() == 50.0
    again = store.claim_next(max_running=5, now=50.0)
    assert (again.id, again.attempt, again.retry_after) == (1, 2, None)


def test_claim_limited_to_configured_repos(store):
    store.enqueue([commit(1, repo="gone")], Trigger.PUSH)
    store.enqueue([commit(2, repo="app")], Trigger.PUSH)
    assert store.claim_next(max_running=5, repos=["app"]).repo == "app"
    assert store.claim_next(max_running=5, repos=["app"]) is None


def test_only_a_running_build_can_pass(store):
    (b,) = store.enqueue([commit(1)], Trigger.PUSH)
    assert not store.mark_passed(b.id)  # queued: refused
    store.claim_next(max_running=1)
    assert store.mark_passed(b.id, ["quay.io/o/a@sha256:ab"], now=99.0)
    done = store.get(b.id)
    assert done.status == BuildStatus.PASSED and done.images == ("quay.io/o/a@sha256:ab",)
    assert done.finished_at == 99.0
    # a finished build stays finished
    assert not store.mark_failed(b.id, "late")
    assert not store.mark_cancelled(b.id, "late")
    assert not store.requeue(b.id, 0, "late")
    assert store.get(b.id).status == BuildStatus.PASSED


def test_failure_records_step_and_message(store):
    (b,) = store.enqueue([commit(1)], Trigger.PUSH)
    store.claim_next(max_running=1)
    assert store.mark_failed(b.id, "exit status 2", failed_step="make")
    done = store.get(b.id)
    assert (done.status, done.failed_step, done.message) == ("failed", "make", "exit status 2")


def test_cancel_queued_now_running_by_request(store):
    a, b = store.enqueue([commit(1), commit(2, "refs/heads/dev")], Trigger.PUSH)
    running = store.claim_next(max_running=1)
    assert running.id == a.id
    assert store.request_cancel(b.id).status == BuildStatus.CANCELLED
    flagged = store.request_cancel(a.id)
    assert flagged.status == BuildStatus.RUNNING and flagged.cancel_requested
    assert [x.id for x in store.cancel_requests()] == [a.id]
    assert store.mark_cancelled(a.id)  # keeps the request's reason
    assert store.get(a.id).message == "cancelled by user"
    assert store.cancel_requests() == []
    with pytest.raises(UnknownBuildError, match="no build with id 77"):
        store.request_cancel(77)


def test_cancel_superseded_flags_running_builds_of_other_commits(store):
    store.enqueue([commit(1)], Trigger.PUSH)
    store.claim_next(max_running=1)
    assert store.cancel_superseded("app", MAIN, sha(1)) == []  # same commit: keep
    (flagged,) = store.cancel_superseded("app", MAIN, sha(2))
    assert flagged.cancel_requested and flagged.message == f"superseded by {sha(2)}"
    assert store.cancel_superseded("app", MAIN, sha(3)) == []  # already flagged


def test_recovery_requeues_once_then_errors(store):
    store.enqueue([commit(1)], Trigger.PUSH)
    store.enqueue([commit(2, "refs/heads/dev")], Trigger.PUSH)
    store.claim_next(max_running=2)
    store.claim_next(max_running=2)
    assert store.mark_interrupted(2, "shutdown")  # SIGTERM path; 1 stays "running" (crash path)
    recovered = store.recover_interrupted(now=5.0)
    assert {(b.id, b.status, b.attempt, b.interruptions) for b in recovered} == {
        (1, "queued", 2, 1),
        (2, "queued", 2, 1),
    }
    store.claim_next(max_running=2)
    store.claim_next(max_running=2)
    (again, _) = store.recover_interrupted(now=9.0)
    assert again.status == BuildStatus.ERROR and "not retried" in again.message
    assert all(b.status == BuildStatus.ERROR for b in store.list_builds())
    assert store.recover_interrupted() == []


def test_drop_ref_cancels_queued_and_forgets_the_ref(store):
    store.enqueue([commit(1, "refs/heads/x"), commit(2, "refs/heads/x")], Trigger.PUSH)
    store.enqueue([commit(3)], Trigger.PUSH)
    store.claim_next(max_running=5)  # build 1 runs: dropping the ref leaves it alone
    assert store.drop_ref("app", "refs/heads/x") == [2]
    assert store.get_ref("app", "refs/heads/x") is None
    assert store.get_ref("app", MAIN) == sha(3)
    assert statuses(store) == [(1, "running"), (2, "cancelled"), (3, "queued")]


def test_prune_keeps_newest_finished_and_everything_unfinished(store):
    for n in range(6):
        store.enqueue([commit(n)], Trigger.PUSH)
        b = store.claim_next(max_running=1)
        store.set_paths(b.id, log_path=f"/logs/{b.id}.log", work_dir=f"/work/{b.id}")
        store.mark_passed(b.id)
    store.enqueue([commit(7)], Trigger.PUSH)
    store.enqueue([commit(8, repo="other")], Trigger.PUSH)
    doomed = store.prune("app", keep=2)
    assert [b.id for b in doomed] == [4, 3, 2, 1]
    assert doomed[0].log_path == "/logs/4.log" and doomed[0].work_dir == "/work/4"
    files = StateDir(Path("/s")).build_files(doomed[0])
    assert [str(f) for f in files] == ["/logs/4.log", "/logs/4.log.gz", "/work/4"]
    assert [b.id for b in store.list_builds()] == [8, 7, 6, 5]
    assert store.prune("app", keep=2) == []


def test_list_filters(store):
    store.enqueue([commit(1), commit(2)], Trigger.PUSH)
    store.enqueue([commit(3, repo="other")], Trigger.PUSH)
    store.claim_next(max_running=1)
    assert [b.id for b in store.list_builds(repo="app")] == [2, 1]
    assert [b.id for b in store.list_builds(statuses=["running"])] == [1]
    assert [b.id for b in store.list_builds(limit=1)] == [3]
    assert [b.id for b in store.queued()] == [2, 3] and [b.id for b in store.running()] == [1]


def test_heartbeat_round_trip(store):
    assert store.daemon_info() is None
    store.heartbeat("watching 2 repositories", ["a", "b"], started_at=1.0, config_path="/c")
    info = store.daemon_info()
    assert info.status == "watching 2 repositories" and info.repos == ("a", "b")
    assert info.started_at == 1.0 and info.config_path == "/c" and info.pid > 0
    store.heartbeat("stopped", ["a"], started_at=1.0, pid=42)
    assert (store.daemon_info().pid, store.daemon_info().status) == (42, "stopped")


def test_data_version_moves_when_another_connection_writes(tmp_path):
    path = tmp_path / "s.db"
    reader, writer = Store(path), Store(path)
    before = reader.data_version()
    assert reader.data_version() == before
    writer.enqueue([commit(1)], Trigger.MANUAL)
    assert reader.data_version() != before


def test_record_json(store):
    (b,) = store.enqueue([commit(1)], Trigger.CRON)
    data = b.to_json()
    assert data["status"] == "queued" and data["trigger"] == "cron" and data["images"] == []


def test_build_files_default_to_the_state_dir_layout(store, tmp_path):
    (b,) = store.enqueue([commit(1)], Trigger.PUSH)
    state = StateDir(tmp_path)
    assert state.build_files(b) == [
        tmp_path / "logs" / "app" / "1.log",
        tmp_path / "logs" / "app" / "1.log.gz",
        tmp_path / "work" / "app" / "1",
    ]


def _hold_lock(root: str, ready, release) -> None:
    from scratchd.store import DaemonLock

    with DaemonLock(Path(root)):
        ready.set()
        release.wait(30)


def test_daemon_lock_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path):
    import multiprocessing

    from scratchd.store import DaemonLock

    ctx = multiprocessing.get_context("spawn")
    ready, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=_hold_lock, args=(str(tmp_path), ready, release))
    proc.start()
    assert ready.wait(30)
    lock = DaemonLock(tmp_path)
    assert lock.holder() == proc.pid
    with pytest.raises(StoreError, match=f"another scratchd daemon \\(pid {proc.pid}\\)"):
        lock.acquire()
    proc.kill()  # kill -9: the kernel releases the flock
    proc.join(10)
    assert lock.holder() is None
    with lock:
        assert lock.holder() is not None
    assert lock.holder() is None


def test_messages_are_masked_with_the_daemons_masker_before_they_are_written(tmp_path):
    from scratchd.models import Secret
    from scratchd.redact import Masker

    db = StateDir(tmp_path / "state").db
    store = Store(db, masker=Masker([Secret("registry-pw-1")]))
    for n, mark in enumerate(("failed", "error", "requeue", "cancelled", "interrupted")):
        (build,) = store.enqueue([commit(n)], Trigger.PUSH)
        conn = sqlite3.connect(db)
        conn.execute("UPDATE builds SET status='running' WHERE id=?", (build.id,))
        conn.commit()
        text = f"{mark}: login registry-pw-1 rejected"
        if mark == "requeue":
            assert store.requeue(build.id, 0.0, text)
        else:
            assert getattr(store, f"mark_{mark}")(build.id, text)
    store.close()
    rows = sqlite3.connect(db).execute("SELECT message FROM builds").fetchall()
    assert len(rows) == 5 and all(m.endswith("login *** rejected") for (m,) in rows), rows
    for path in db.parent.glob(db.name + "*"):  # the DB, -wal, -shm
        assert b"registry-pw-1" not in path.read_bytes(), path.name


def test_count_queued_counts_only_queued(store):
    store.enqueue([Commit("app", f"refs/heads/b{n}", f"{n:040x}") for n in range(3)], Trigger.PUSH)
    store.claim_next(max_running=1)
    assert store.count_queued() == 2 == len(store.queued())


def test_enqueue_keeps_when_the_watcher_saw_the_commit(store):
    seen = Commit("app", "refs/heads/main", "a" * 40, seen_at=1000.5)
    manual = Commit("app", "refs/heads/dev", "b" * 40)
    a, b = store.enqueue([seen, manual], Trigger.PUSH, now=1001.0)
    assert (a.seen_at, b.seen_at) == (1000.5, None)  # a manual trigger has no "seen"


def test_record_pushes_writes_every_push_of_a_build_in_one_go(store):
    from scratchd.models import PushFigures

    b = store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)[0]
    store.record_pushes(b.id, [])  # nothing pushed: nothing written
    pushes = [
        PushFigures("quay.io", "org/app", 2.5, (("uploaded", 2, 900), ("existed", 1, 100))),
        PushFigures("127.0.0.1:5000", "team/app", 0.1, (("mounted", 3, 70),)),
    ]
    store.record_pushes(b.id, pushes)
    rows = [tuple(r) for r in store.db.read("SELECT * FROM pushes ORDER BY rowid")]
    columns = [r[1] for r in store.db.read("PRAGMA table_info(pushes)")]
    assert [dict(zip(columns, r, strict=True)) for r in rows] == [
        {"build_id": b.id, "registry": "quay.io", "repository": "org/app", "seconds": 2.5,
         "uploaded_blobs": 2, "uploaded_bytes": 900, "existed_blobs": 1, "existed_bytes": 100,
         "mounted_blobs": 0, "mounted_bytes": 0},
        {"build_id": b.id, "registry": "127.0.0.1:5000", "repository": "team/app",
         "seconds": 0.1, "uploaded_blobs": 0, "uploaded_bytes": 0, "existed_blobs": 0,
         "existed_bytes": 0, "mounted_blobs": 3, "mounted_bytes": 70},
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown push outcome"):
        store.record_pushes(b.id, [PushFigures("quay.io", "org/app", 1.0, (("lost", 1, 1),))])
