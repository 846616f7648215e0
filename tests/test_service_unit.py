"""The Service's wiring, with in-memory collaborators: fast, and exact about who is asked what.

The real-process tests (``test_service*.py``) prove the daemon end to end;
these pin the main loop's contract with each collaborator: start-up order,
a watcher's commit becoming a started build, SIGHUP reload, cancels, drain.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import threading
import time

import pytest

from scratchd.errors import ConfigError
from scratchd.git.refs import RefUpdate
from scratchd.models import Commit, Trigger
from scratchd.scheduler import Policy
from scratchd.service import Service
from tests.support.fakes import (
    WAIT,
    FakeNotifier,
    FakePool,
    FakeScheduler,
    FakeStore,
    FakeWatcher,
    config,
    record,
    replace_daemon,
)

SHA = "a" * 40


class Rig:
    """A Service built from fakes; ``loads`` is what the next reload's loader returns."""

    def __init__(self, tmp_path, *repos: str, obedient: bool = True, watchdog=None, **daemon):
        self.calls: list[tuple] = []
        self.config = config(tmp_path, *repos, **daemon)
        self.loads: list = []
        self.store = FakeStore(self.calls, refs={"app": {"refs/heads/main": "0" * 40}})
        self.scheduler = FakeScheduler(self.calls)
        self.notifier = FakeNotifier(self.calls, watchdog)
        self.watcher: FakeWatcher | None = None
        self.pool: FakePool | None = None
        self.pool_config = None

        def make_watcher(sink):
            self.watcher = FakeWatcher(sink, self.calls)
            return self.watcher

        def make_pool(config_getter, on_done):
            self.pool_config = config_getter
            self.pool = FakePool(self.calls, on_done, obedient=obedient)
            return self.pool

        self.service = Service(
            self.config,
            store=self.store,
            scheduler=self.scheduler,
            make_watcher=make_watcher,
            make_pool=make_pool,
            loader=self.load,
            policy_of=Policy.from_config,
            notifier=self.notifier,
        )

    def load(self, path):
        self.calls.append(("loader", path))
        outcome = self.loads.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    @contextlib.contextmanager
    def running(self):
        """The main loop on a thread; stopped (SIGTERM's path) and joined on exit."""
        status: list[int] = []
        thread = threading.Thread(target=lambda: status.append(self.service.run()), daemon=True)
        thread.start()
        wait_for(lambda: any(c[:2] == ("notify", "ready") for c in self.calls))
        try:
            yield
        finally:
            self.service.request_stop()
            thread.join(WAIT)
        assert not thread.is_alive() and status == [0]

    def names(self, who: str) -> list[tuple]:
        return [c[1:] for c in self.calls if c[0] == who]


def wait_for(predicate, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_startup_recovers_before_watching_and_passes_known_refs(tmp_path):
    rig = Rig(tmp_path, "app")
    with rig.running():
        pass
    order = [c[:2] for c in rig.calls if c[0] in ("scheduler", "watcher", "notify")]
    assert order[:4] == [
        ("scheduler", "recover"),
        ("watcher", "start"),
        ("watcher", "configure"),
        ("notify", "ready"),
    ]
    configure = next(c for c in rig.calls if c[:2] == ("watcher", "configure"))
    assert configure[2:] == (("app",), {"app": {"refs/heads/main": "0" * 40}})


def test_a_commit_from_the_watcher_is_queued_and_started_without_a_tick(tmp_path):
    rig = Rig(tmp_path, "app")
    with rig.running():
        commit = Commit("app", "refs/heads/main", SHA)
        update = RefUpdate("app", "refs/heads/main", "0" * 40, SHA, (commit,))
        rig.watcher.sink.refs_changed("app", [update], Trigger.PUSH)
        assert rig.pool.started.wait(WAIT)
        [started] = rig.pool.running()
        rig.pool.end(started.id)
    assert rig.names("scheduler")[1] == ("submit", (commit,), Trigger.PUSH, True)
    assert started.sha == SHA and started.repo == "app"


def test_commits_of_an_unconfigured_repo_are_ignored_and_deleted_refs_dropped(tmp_path):
    rig = Rig(tmp_path, "app")
    gone = RefUpdate("app", "refs/heads/old", SHA, None)
    rig.service.refs_changed("other", [gone], Trigger.PUSH)
    assert rig.names("scheduler") == []
    rig.service.refs_changed("app", [gone], Trigger.PUSH)
    assert rig.names("scheduler") == [("ref_deleted", "app", "refs/heads/old")]


def test_cron_queues_current_tips_without_moving_last_seen_refs(tmp_path):
    rig = Rig(tmp_path, "app")
    rig.service.cron_fired("app", {"refs/heads/main": SHA})
    commit = Commit("app", "refs/heads/main", SHA)
    assert rig.names("scheduler") == [("submit", (commit,), Trigger.CRON, False)]


def test_sighup_reloads_repos_policy_and_poll_interval(tmp_path):
    rig = Rig(tmp_path, "app", "old")
    new = config(tmp_path, "app", "new", poll_interval=7.0, max_concurrent_builds=5)
    rig.loads.append(new)
    previous = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}
    rig.service.install_signal_handlers()

    def operator() -> None:  # what `systemctl reload` then `systemctl stop` do
        wait_for(lambda: rig.names("notify"))
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: rig.scheduler.policy is not None)
        os.kill(os.getpid(), signal.SIGTERM)

    helper = threading.Thread(target=operator, daemon=True)
    helper.start()
    try:
        assert rig.service.run() == 0  # the main thread, where Python runs signal handlers
    finally:
        helper.join(WAIT)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert rig.service.config is new and rig.pool_config() is new
    assert rig.scheduler.policy.max_concurrent_builds == 5
    assert ("repo_removed", "old") in rig.names("scheduler")
    assert rig.watcher.specs == ["app", "new"] and rig.watcher.poll_interval == 7.0
    reconfigured = [c for c in rig.names("watcher") if c[0] == "configure"][-1]
    assert list(reconfigured[2]) == ["new"]  # only a new repo's last-seen refs are looked up
    assert ("reloading",) in rig.names("notify")


def test_builds_start_while_a_reload_reads_the_config(tmp_path):
    """Reading 1,000 repositories' config takes a while; the loop must not wait for it."""
    rig = Rig(tmp_path, "app")
    reading, finish = threading.Event(), threading.Event()
    new = config(tmp_path, "app", "new")

    def slow_load(path):
        reading.set()
        assert finish.wait(WAIT)
        return new

    rig.service._loader = slow_load
    with rig.running():
        rig.service.request_reload()
        assert reading.wait(WAIT)
        commit = Commit("app", "refs/heads/main", SHA)
        update = RefUpdate("app", "refs/heads/main", "0" * 40, SHA, (commit,))
        rig.watcher.sink.refs_changed("app", [update], Trigger.PUSH)
        assert rig.pool.started.wait(WAIT)  # started while the file is still being read
        assert rig.service.config is rig.config
        finish.set()
        wait_for(lambda: rig.service.config is new)
        [started] = rig.pool.running()
        rig.pool.end(started.id)
    assert rig.watcher.specs == ["app", "new"]


def test_an_invalid_reload_keeps_the_running_config(tmp_path):
    rig = Rig(tmp_path, "app")
    rig.loads.append(ConfigError("scratchd.toml: line 3: bad"))
    assert rig.service.reload() is False
    assert rig.service.config is rig.config and rig.scheduler.policy is None
    assert rig.names("notify")[-1][0] == "ready"


def test_a_reload_cannot_add_the_first_or_remove_the_last_engine(tmp_path, caplog):
    from scratchd.config.engines import EngineConfig

    rig = Rig(tmp_path, "app")
    pool = (EngineConfig("b1", "unix:///b1.sock"),)
    rig.loads.append(dataclasses.replace(config(tmp_path, "app"), engines=pool))
    assert rig.service.reload() is False
    assert rig.service.config is rig.config
    assert "adding the first [[engine]] needs a restart" in caplog.text


def test_a_reload_cannot_move_the_state_dir(tmp_path):
    rig = Rig(tmp_path, "app")
    rig.loads.append(config(tmp_path, "app", state_dir=tmp_path / "elsewhere"))
    assert rig.service.reload() is True
    assert rig.service.config.daemon.state_dir == rig.config.daemon.state_dir


def test_cancel_requests_reach_the_pool(tmp_path):
    rig = Rig(tmp_path, "app", obedient=False)
    with rig.running():
        rig.scheduler.cancel_flags.append(dataclasses.replace(record(7), message="by user"))
        rig.store.version += 1  # `scratchd cancel` wrote to the database
        rig.service.wake()  # ... and rang the doorbell
        wait_for(lambda: ("pool", "cancel", 7, "by user") in rig.calls)


def test_a_lost_doorbell_is_covered_by_the_safety_net_look(tmp_path):
    """No wake call: the database change is still noticed, at the poll_interval pace."""
    rig = Rig(tmp_path, "app", obedient=False, poll_interval=0.2)
    with rig.running():
        rig.scheduler.cancel_flags.append(dataclasses.replace(record(7), message="by user"))
        rig.store.version += 1
        wait_for(lambda: ("pool", "cancel", 7, "by user") in rig.calls)


def test_an_idle_loop_sleeps_and_writes_the_status_only_when_it_changes(tmp_path):
    rig = Rig(tmp_path, "app", poll_interval=3600, shutdown_grace=0.05)
    looks: list[int] = []
    real_version = rig.store.data_version
    rig.store.data_version = lambda: looks.append(1) or real_version()  # type: ignore[method-assign]
    with rig.running():
        time.sleep(0.3)
        asked = len(looks)
        time.sleep(0.6)  # the old loop would have ticked three times and beaten once
        assert len(looks) == asked  # asleep: nothing polled
        beats = list(rig.store.heartbeats)
        rig.scheduler.queue.append(record(1))
        rig.service.wake()
        wait_for(lambda: len(rig.store.heartbeats) > len(beats))  # "1 running": a change
    assert len(beats) == 1


def test_drain_lets_builds_finish_within_the_grace(tmp_path):
    rig = Rig(tmp_path, "app", shutdown_grace=WAIT)
    rig.scheduler.queue.append(record(1))
    with rig.running():
        assert rig.pool.started.wait(WAIT)
        threading.Timer(0.05, rig.pool.end, args=(1,)).start()
    assert ("pool", "cancel_all", "daemon stopped") not in rig.calls
    assert ("watcher", "stop") in rig.calls and rig.store.heartbeats[-1] == "stopped"
    assert ("notify", "stopping", "stopping, 1 builds running") in rig.calls


def test_drain_cancels_what_outlives_the_grace(tmp_path):
    rig = Rig(tmp_path, "app", obedient=False, shutdown_grace=0.05)
    rig.scheduler.queue.append(record(1))
    with rig.running():
        assert rig.pool.started.wait(WAIT)
    assert ("pool", "cancel_all", "daemon stopped") in rig.calls
    assert rig.pool.running() == []


def test_the_watchdog_is_pinged_while_running(tmp_path):
    rig = Rig(tmp_path, "app", watchdog=0.01)
    with rig.running():
        assert rig.notifier.pinged.wait(WAIT)


@pytest.mark.parametrize("state_dir_change", [False, True])
def test_reload_hands_the_pool_the_new_config(tmp_path, state_dir_change):
    rig = Rig(tmp_path, "app")
    new = config(tmp_path, "app", keep_builds=3)
    if state_dir_change:
        new = replace_daemon(new, state_dir=tmp_path / "moved")
    rig.loads.append(new)
    rig.service.reload()
    assert rig.pool_config().daemon.keep_builds == 3
    assert rig.pool_config().daemon.state_dir == rig.config.daemon.state_dir


def test_a_due_retry_that_cannot_start_does_not_spin_the_loop(tmp_path):
    """A backed-off build is due but the pool is full: wait for a build to end, not spin."""
    rig = Rig(tmp_path, "app", poll_interval=3600, shutdown_grace=0.05)
    due = time.time() - 1
    asked: list[float | None] = []

    def next_wakeup(after=None):
        asked.append(after)
        return due if after is None else None  # nothing due later than now

    rig.scheduler.next_wakeup = next_wakeup  # type: ignore[method-assign]
    with rig.running():
        time.sleep(0.5)
    assert len(asked) < 10  # the old loop would have asked at every spin


def test_a_full_disk_is_rechecked_at_a_modest_pace_until_space_is_back(tmp_path, monkeypatch):
    """Nothing signals freed space: while paused (only then) the loop looks by itself."""
    import scratchd.service as service_module

    full = [True]
    monkeypatch.setattr(service_module, "low_on_space", lambda _path: full[0])
    monkeypatch.setattr(service_module, "RECHECK_WHILE_TROUBLED", 0.05)
    rig = Rig(tmp_path, "app", poll_interval=3600, shutdown_grace=0.05)
    looks: list[int] = []
    real_version = rig.store.data_version
    rig.store.data_version = lambda: looks.append(1) or real_version()  # type: ignore[method-assign]
    with rig.running():
        rig.scheduler.queue.append(record(1))
        rig.service.wake()  # a build queued while the disk is full: it waits
        wait_for(lambda: len(looks) > 5)  # rechecked with no wake and no safety net
        assert rig.names("pool") == [] and rig.pool is not None and rig.pool.disk_full.active
        full[0] = False  # the operator freed space; nobody tells the daemon
        wait_for(lambda: ("start", 1) in rig.names("pool"))
        assert not rig.pool.disk_full.active
        time.sleep(0.1)
        settled = len(looks)
        time.sleep(0.3)  # six rechecks' worth
        assert len(looks) == settled  # space is back: still again


def test_an_outcome_the_database_refused_is_retried_until_written(tmp_path, monkeypatch):
    import scratchd.service as service_module

    monkeypatch.setattr(service_module, "RECHECK_WHILE_TROUBLED", 0.05)
    rig = Rig(tmp_path, "app", poll_interval=3600, shutdown_grace=0.05)
    pending = [3]
    tries: list[int] = []

    def record_pending() -> int:
        tries.append(pending[0])
        pending[0] = max(0, pending[0] - 1)
        return pending[0]

    with rig.running():
        assert rig.pool is not None
        rig.pool.record_pending = record_pending  # type: ignore[method-assign]
        rig.service.wake()  # a build ended with its outcome unwritten
        wait_for(lambda: pending[0] == 0)
        time.sleep(0.3)
        assert len(tries) <= 5  # written at last: no more rechecks


def test_activity_listeners_hear_each_wake_that_acted(tmp_path):
    """The notification sender is told when builds may have changed, not on a timer."""
    rig = Rig(tmp_path, "app", poll_interval=3600, shutdown_grace=0.05)
    told: list[int] = []
    rig.service.on_activity(lambda: told.append(1))
    with rig.running():
        wait_for(lambda: told)  # the first pass
        time.sleep(0.3)
        before = len(told)
        time.sleep(0.3)
        assert len(told) == before  # idle: nobody told anything
        rig.scheduler.queue.append(record(1))
        rig.service.wake()
        wait_for(lambda: len(told) > before)
