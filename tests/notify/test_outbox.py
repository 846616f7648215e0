"""The outbox is written by the store, in the transaction of each status change."""

from __future__ import annotations

import sqlite3

import pytest

from scratchd.errors import StoreError
from scratchd.models import Commit, Trigger
from scratchd.store import StateDir, Store

MAIN = "refs/heads/main"


def commit(n: int, ref: str = MAIN) -> Commit:
    return Commit(repo="app", ref=ref, sha=f"{n:040x}")


@pytest.fixture
def store(tmp_path):
    s = Store(StateDir(tmp_path / "state").db)
    yield s
    s.close()


def types(store: Store, build_id: int) -> list[str]:
    return [e.type for e in store.events(build_id=build_id)]


def run(store: Store, n: int, passed: bool) -> int:
    (build,) = store.enqueue([commit(n)], Trigger.PUSH)
    claimed = store.claim_next(max_running=5)
    assert claimed.id == build.id
    if passed:
        store.mark_passed(build.id, images=["reg/app@sha256:" + "a" * 64])
    else:
        store.mark_failed(build.id, "step failed", failed_step="compile")
    return build.id


def test_lifecycle_events_and_snapshots(store):
    build = run(store, 1, passed=True)
    events = store.events(build_id=build)
    assert [e.type for e in events] == ["build.queued", "build.started", "build.finished"]
    assert [e.build["status"] for e in events] == ["queued", "running", "passed"]
    assert events[-1].build["images"] == ["reg/app@sha256:" + "a" * 64]
    assert len({e.event_id for e in events}) == 3
    assert all(e.event_id.startswith("msg_") for e in events)
    assert "log_path" not in events[0].build


def test_broken_then_fixed_compare_with_the_previous_finished_build(store):
    first = run(store, 1, passed=True)
    broken = run(store, 2, passed=False)
    still = run(store, 3, passed=False)
    fixed = run(store, 4, passed=True)
    assert "build.broken" not in types(store, first)
    assert types(store, broken)[-1] == "build.broken"
    assert store.events(build_id=broken)[-1].previous["id"] == first
    assert "build.broken" not in types(store, still)
    assert "build.fixed" not in types(store, still)
    assert types(store, fixed)[-1] == "build.fixed"
    assert store.events(build_id=fixed)[-1].build["failed_step"] is None


def test_cancelled_builds_do_not_count_as_verdicts(store):
    run(store, 1, passed=True)
    (doomed,) = store.enqueue([commit(2)], Trigger.PUSH)
    store.request_cancel(doomed.id)
    assert types(store, doomed.id) == ["build.queued", "build.finished"]
    fixed_or_broken = run(store, 3, passed=False)
    assert types(store, fixed_or_broken)[-1] == "build.broken"


def test_every_way_to_finish_writes_finished(store):
    a, b = store.enqueue([commit(1), commit(2)], Trigger.PUSH, coalesce=True)
    assert types(store, a.id) == ["build.queued", "build.finished"]  # superseded
    (c,) = store.enqueue([commit(3, "refs/heads/gone")], Trigger.PUSH)
    store.drop_ref("app", "refs/heads/gone")
    assert types(store, c.id)[-1] == "build.finished"
    assert store.claim_next(max_running=5).id == b.id
    (d,) = store.enqueue([commit(4, "refs/heads/x")], Trigger.PUSH)
    store.cancel_queued("app", "repository removed")
    assert types(store, d.id)[-1] == "build.finished"
    store.recover_interrupted()  # running -> queued again: no finished event
    assert types(store, b.id) == ["build.queued", "build.started"]
    store.claim_next(max_running=5)
    store.recover_interrupted()  # interrupted twice -> error: finished
    assert types(store, b.id)[-1] == "build.finished"
    assert store.events(build_id=b.id)[-1].build["status"] == "error"


def test_a_rolled_back_change_leaves_no_event(store, monkeypatch):
    (build,) = store.enqueue([commit(1)], Trigger.PUSH)
    store.claim_next(max_running=5)

    # Make the event insert fail: the status update must roll back with it.
    conn = sqlite3.connect(store.path)
    conn.execute(
        "CREATE TRIGGER no_finish BEFORE INSERT ON notify_events"
        " WHEN NEW.type = 'build.finished' BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    )
    conn.close()
    with pytest.raises(StoreError):
        store.mark_passed(build.id)
    assert str(store.get(build.id).status) == "running"
    assert types(store, build.id) == ["build.queued", "build.started"]


def test_deliveries_are_routed_once_and_recorded(store):
    build = run(store, 1, passed=True)
    assert store.route(lambda e: ["hook"] if e.type == "build.finished" else [], now=10) == 3
    assert store.route(lambda e: ["hook"], now=10) == 0  # routed already
    (due,) = store.due_deliveries(now=10)
    assert due.event.build_id == build and due.sink == "hook"
    store.retry_later(due.event.id, "hook", at=20, error="HTTP 500")
    assert store.due_deliveries(now=15) == []
    assert store.next_delivery_at() == 20
    store.delivered(due.event.id, "hook", now=21)
    store.gave_up(due.event.id, "hook", now=22, error="late")  # no effect once delivered
    (row,) = store.deliveries(due.event.id)
    assert row["attempts"] == 2 and row["delivered_at"] == 21 and row["gave_up_at"] is None
    assert store.due_deliveries(now=100) == []
    assert store.prune_outbox(before=1e12) == 3


def test_a_passed_builds_event_carries_its_image_tags(store):
    """Digests say what was pushed; tags say where (repo:tag), as the push step reported."""
    from scratchd.notify.events import environment, payload
    from scratchd.outcome import StepResult, decide
    from scratchd.scheduler import Policy, Scheduler

    sched = Scheduler(store, Policy(2))
    (build,) = store.enqueue([commit(7)], Trigger.PUSH)
    claimed = store.claim_next(max_running=5)
    pushed = StepResult(
        "deploy",
        "push",
        "passed",
        0.2,
        digest="sha256:" + "b" * 64,
        images=("quay.io/acme/app:" + "0" * 33 + "7", "quay.io/acme/app:latest"),
    )
    sched.finish(claimed, decide(str(build.id), steps=(pushed,)))
    record = store.get(build.id)
    assert record.tags == pushed.images and record.images == (pushed.digest,)
    [finished] = [e for e in store.events(build_id=build.id) if e.type == "build.finished"]
    data = payload(finished)["data"]
    assert data["tags"] == list(pushed.images) and data["images"] == [pushed.digest]
    env = environment(payload(finished), finished.event_id)
    assert env["SCRATCHD_TAGS"] == " ".join(pushed.images)
