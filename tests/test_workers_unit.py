"""WorkerPool with in-memory collaborators: each build ends in exactly one outcome call.

The executor here is a fake that answers from a script (pass, fail, crash,
wait for cancel); the real executor and backends are proven in ``tests/runner``
and the daemon end to end in ``tests/test_service*.py``.
"""

from __future__ import annotations

import threading

from scratchd.models import BuildStatus
from scratchd.outcome import BuildOutcome
from scratchd.store import StateDir
from scratchd.workers import SHUTDOWN, OutputRouter, WorkerPool
from tests.support.fakes import WAIT, FakeCheckout, FakeScheduler, FakeStore, config, record

WERCKER_YML = "build:\n  steps:\n    - script:\n        name: hello\n        code: echo hi\n"


class FakeExecutor:
    """Runs ``behaviour(plan, cancel)`` and remembers what it was asked."""

    def __init__(self, behaviour) -> None:
        self.behaviour = behaviour
        self.requests: list = []
        self.cancels: list[threading.Event] = []
        self.maskers: list = []
        self.entered = threading.Event()

    def prepare(self, plan, masker):
        return None  # nothing to make ahead: the fake has no containers

    def run(self, plan, cancel: threading.Event, masker, prepared=None):
        self.requests.append(plan)
        self.maskers.append(masker)
        self.cancels.append(cancel)
        self.entered.set()
        return self.behaviour(plan, cancel)


def result(status: BuildStatus, **kw) -> BuildOutcome:
    return BuildOutcome(build_id="1", status=status, **kw)


class Rig:
    def __init__(
        self, tmp_path, behaviour, *, files=None, notes: bool = False, engines=None
    ) -> None:
        self.calls: list[tuple] = []
        self.config = config(tmp_path, "app", notes=notes)
        self.store = FakeStore(self.calls)
        self.scheduler = FakeScheduler(self.calls)
        self.executor = FakeExecutor(behaviour)
        self.checkout = FakeCheckout({"wercker.yml": WERCKER_YML} if files is None else files)
        self.state = StateDir(tmp_path / "state")
        self.done = threading.Semaphore(0)
        self.notes: list[tuple] = []
        self.pool = WorkerPool(
            store=self.store,
            scheduler=self.scheduler,
            executor=self.executor,
            checkout=self.checkout,
            state=self.state,
            config=lambda: self.config,
            router=OutputRouter(),
            on_done=self.done.release,
            notes_writer=lambda *args: self.notes.append(args),
            engines=engines,
        )

    def build(self, build_id: int = 1):
        """Start one build and wait until the pool reported its end."""
        self.pool.start(record(build_id))
        assert self.done.acquire(timeout=WAIT)
        assert self.pool.join(WAIT)
        return self.scheduler.finished


def test_the_loop_is_woken_as_the_outcome_is_recorded_before_notes_and_pruning(tmp_path):
    """The freed slot is offered to the next build without waiting for this one's tail."""
    rig = Rig(tmp_path, lambda req, cancel: result(BuildStatus.PASSED), notes=True)
    events: list[str] = []
    rig.pool._notes_writer = lambda *args: events.append("note")
    rig.pool._on_done = lambda: (events.append("woken"), rig.done.release())
    rig.build()
    assert events[:2] == ["woken", "note"]


def test_a_passing_build_is_finished_once_with_its_paths_recorded(tmp_path):
    rig = Rig(tmp_path, lambda req, cancel: result(BuildStatus.PASSED))
    [(build, outcome)] = rig.build()
    assert build.id == 1 and outcome.passed
    [plan] = rig.executor.requests
    assert plan.build_id == "1" and plan.executor == "host"
    # deploy is configured but not in this file
    assert [p.name for p in plan.pipelines] == ["build"]
    assert plan.source == rig.state.work_dir("app", 1) / "source"
    assert rig.store.paths[1] == (rig.state.log_path("app", 1), rig.state.work_dir("app", 1))
    assert ("store", "prune", "app", rig.config.daemon.keep_builds) in rig.calls
    assert rig.pool.running() == []


def test_a_failed_step_becomes_a_build_failure_naming_the_step(tmp_path):
    failed = result(
        BuildStatus.FAILED, failed_pipeline="build", failed_step="hello", exit_code=3, message="x"
    )
    rig = Rig(tmp_path, lambda req, cancel: failed)
    [(_build, outcome)] = rig.build()
    assert outcome.status == BuildStatus.FAILED and outcome.exit_code == 3
    assert "build/hello" in outcome.reason and outcome.failed_step == "hello"


def test_a_crashing_executor_is_that_builds_error_and_frees_its_slot(tmp_path):
    def crash(req, cancel):
        raise RuntimeError("executor bug")

    rig = Rig(tmp_path, crash)
    [(_build, outcome)] = rig.build(1)
    assert outcome.status == BuildStatus.ERROR and outcome.internal
    assert outcome.message == "internal error: executor bug"
    assert rig.pool.running() == []
    rig.executor.behaviour = lambda req, cancel: result(BuildStatus.PASSED)
    finished = rig.build(2)  # the pool still works after a crash
    assert [(b.id, o.status) for b, o in finished][-1] == (2, BuildStatus.PASSED)


def test_a_missing_wercker_yml_is_a_pipeline_error_before_anything_runs(tmp_path):
    rig = Rig(tmp_path, lambda req, cancel: result(BuildStatus.PASSED), files={})
    [(_build, outcome)] = rig.build()
    assert outcome.status == BuildStatus.FAILED and "wercker.yml" in outcome.message
    assert rig.executor.requests == []


def test_cancel_reaches_the_executors_cancel_event(tmp_path):
    def wait_for_cancel(req, cancel):
        assert cancel.wait(WAIT)
        return result(BuildStatus.CANCELLED, message="cancelled by user")

    rig = Rig(tmp_path, wait_for_cancel)
    rig.pool.start(record(1))
    assert rig.executor.entered.wait(WAIT)
    assert [r.id for r in rig.pool.running()] == [1]
    assert rig.pool.cancel(1, "cancelled by user") is True
    assert rig.pool.cancel(1, "again") is False  # one cancel per build
    assert rig.done.acquire(timeout=WAIT) and rig.pool.join(WAIT)
    assert rig.executor.cancels[0].is_set()
    [(_build, outcome)] = rig.scheduler.finished
    assert outcome.status == BuildStatus.CANCELLED


def test_a_shutdown_cancel_interrupts_instead_of_finishing(tmp_path):
    def wait_for_cancel(req, cancel):
        assert cancel.wait(WAIT)
        return result(BuildStatus.CANCELLED)

    rig = Rig(tmp_path, wait_for_cancel)
    rig.pool.start(record(1))
    assert rig.executor.entered.wait(WAIT)
    rig.pool.cancel_all()
    assert rig.done.acquire(timeout=WAIT) and rig.pool.join(WAIT)
    assert [o.status for _b, o in rig.scheduler.finished] == [BuildStatus.INTERRUPTED]
    assert [(b.id, reason) for b, reason in rig.scheduler.interrupted] == [(1, SHUTDOWN)]


def test_a_finished_build_gets_a_git_note_when_notes_are_on(tmp_path):
    rig = Rig(tmp_path, lambda req, cancel: result(BuildStatus.PASSED), notes=True)
    rig.build()
    [(path, sha, text)] = rig.notes
    assert path == tmp_path / "app" and sha == record(1).sha and "passed" in text


def test_a_docker_build_holds_one_engine_slot_and_an_engine_error_reports_it(tmp_path, caplog):
    import dataclasses
    import logging

    from scratchd.placement import Placer

    lost: list[str] = []
    placer = Placer([("e1", 1, ["big"]), ("e2", 1, [])], on_lost=lost.append)
    seen: list = []

    def behaviour(plan, cancel):
        seen.append([(e.name, e.used) for e in placer.engines()])
        if len(seen) == 1:
            return result(BuildStatus.PASSED)
        return result(BuildStatus.ERROR, retryable=True, message="engine gone")

    rig = Rig(tmp_path, behaviour, engines=placer)
    repo = dataclasses.replace(rig.config.repos[0], executor="docker", labels=("big",))
    rig.config = dataclasses.replace(rig.config, repos=(repo,))
    with caplog.at_level(logging.INFO, logger="scratchd.workers"):
        rig.build(1)
        rig.build(2)
    assert [p.executor for p in rig.executor.requests] == ["engine:e1", "engine:e1"]
    assert seen == [[("e1", 1), ("e2", 0)]] * 2, "the slot is held while the build runs"
    assert [(e.name, e.used) for e in placer.engines()] == [("e1", 0), ("e2", 0)]
    assert lost == ["e1"], "only the build that hit an infrastructure error suspects its engine"
    placed = [r for r in caplog.records if "placed on engine" in r.getMessage()]
    assert [getattr(r, "ENGINE", None) for r in placed] == ["e1", "e1"]
