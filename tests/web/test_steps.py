"""Steps, their status and duration, read from a build log written by the store's BuildLog."""

from __future__ import annotations

from scratchd.models import Commit, Trigger
from scratchd.store import BuildLog, StateDir, Store
from scratchd.web.steps import parse_steps


def test_steps_from_the_log(tmp_path):
    state = StateDir(tmp_path)
    store = Store(state.db)
    build = store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)[0]
    store.claim_next(max_running=1)
    path = state.log_path("app", build.id)
    with BuildLog(path) as log:
        log.line("checking out", "info", timestamp=100.0)
        log.line("compiling: a: b", pipeline="build", step="go build", timestamp=101.0)
        log.line("more", pipeline="build", step="go build", timestamp=104.0)
        log.line("testing", "stderr", pipeline="build", step="test", timestamp=110.0)
        log.line("still", pipeline="build", step="test", timestamp=112.5)
    store.mark_failed(build.id, "step test failed", "test")
    steps = parse_steps(path.read_bytes(), store.get(build.id))
    assert [s.to_json() for s in steps] == [
        {"pipeline": "build", "name": "go build", "line": 2, "status": "passed", "duration": 9.0},
        {"pipeline": "build", "name": "test", "line": 4, "status": "failed", "duration": 2.5},
    ]
    running = store.enqueue([Commit("app", "refs/heads/main", "b" * 40)], Trigger.PUSH)[0]
    store.claim_next(max_running=1)
    live = parse_steps(path.read_bytes(), store.get(running.id))
    assert [s.status for s in live] == ["passed", "running"]
