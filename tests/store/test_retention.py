"""prune_builds: old records go, and so do their logs and work dirs, nothing else."""

from __future__ import annotations

from scratchd.models import Commit, Trigger
from scratchd.store import BuildLog, StateDir, Store, prune_builds


def finished_build(store: Store, state: StateDir, n: int) -> int:
    store.enqueue([Commit("app", "refs/heads/main", f"{n:040x}")], Trigger.PUSH)
    build = store.claim_next(max_running=1)
    work = state.work_dir("app", build.id)
    (work / "output").mkdir(parents=True)
    (work / "output" / "bin").write_text("x")
    BuildLog(state.log_path("app", build.id)).finish()
    store.mark_passed(build.id)
    return build.id


def test_prune_removes_rows_logs_and_work_dirs(tmp_path):
    state = StateDir(tmp_path / "state")
    store = Store(state.db)
    ids = [finished_build(store, state, n) for n in range(4)]
    assert prune_builds(store, state, "app", keep=2) == 2
    for old in ids[:2]:
        assert store.get(old) is None
        assert not state.work_dir("app", old).exists()
        assert not state.log_path("app", old).with_suffix(".log.gz").exists()
    for kept in ids[2:]:
        assert store.get(kept) is not None and state.work_dir("app", kept).exists()
        assert state.log_path("app", kept).with_suffix(".log.gz").exists()
    assert prune_builds(store, state, "app", keep=2) == 0


def test_prune_never_leaves_the_state_dir(tmp_path):
    state = StateDir(tmp_path / "state")
    store = Store(state.db)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    build_id = finished_build(store, state, 1)
    store.set_paths(build_id, work_dir=outside, log_path=tmp_path / "precious" / "keep.txt")
    finished_build(store, state, 2)
    assert prune_builds(store, state, "app", keep=1) == 1
    assert (outside / "keep.txt").read_text() == "mine"


def test_prune_deletes_in_short_batches_and_lets_writers_in_between(tmp_path):
    """A year of history pruned at once: many small transactions, never one long lock."""
    state = StateDir(tmp_path / "state")
    store = Store(state.db)
    now = 1_700_000_000.0
    with store.db.write() as conn:  # 1,050 finished builds, written directly: fast setup
        conn.executemany(
            "INSERT INTO builds (repo, ref, branch, sha, trigger, status, created_at)"
            " VALUES ('app', 'refs/heads/main', 'main', ?, 'push', 'passed', ?)",
            [(f"{n:040x}", now + n) for n in range(1050)],
        )
    transactions: list[int] = []  # builds DELETEd per transaction, from SQLite's trace
    deletes = 0

    def trace(sql: str) -> None:
        nonlocal deletes
        if sql.startswith("BEGIN"):
            deletes = 0
        elif sql.startswith("DELETE FROM builds "):  # not the rows its triggers take along
            deletes += 1
        elif sql.startswith("COMMIT") and deletes:
            transactions.append(deletes)

    store.db.conn().set_trace_callback(trace)
    other = Store(state.db, busy_timeout=0.5)  # a build recording a step meanwhile
    written = []

    class Interleaved:
        """The real store, with another writer getting in between two batches."""

        def prune(self, repo: str, keep: int, *, batch: int):
            written.append(other.enqueue([Commit("app", "refs/heads/x", "f" * 40)], Trigger.PUSH))
            return store.prune(repo, keep, batch=batch)

    assert prune_builds(Interleaved(), state, "app", keep=50, batch=100) == 1000
    assert transactions == [100] * 10
    assert len(written) == 11  # every batch let another writer in before it
    kept = store.list_builds(repo="app", statuses=["passed"])
    assert len(kept) == 50 and min(b.id for b in kept) == 1001
