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
