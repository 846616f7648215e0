"""EngineHealth's rules against an engine that refuses connections (a closed loopback port)."""

from __future__ import annotations

from scratchd.runner.engine_health import EngineHealth
from scratchd.runner.engines import EngineEndpoint
from tests.support.services import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_down_after_repeated_failures_then_probed_with_doubling_delay():
    dead = EngineEndpoint("gone", f"tcp://127.0.0.1:{free_port()}")
    results, clock = [], Clock()
    health = EngineHealth(
        [dead],
        lambda name, up, facts: results.append((name, up, facts)),
        running=lambda: [],
        interval=10,
        fail_after=3,
        max_backoff=40,
        probe_timeout=2,
        clock=clock,
    )
    probes = []
    for _ in range(8):
        health.check_once()
        watch = health._watches["gone"]
        probes.append(watch.next_probe - clock.now)
        clock.now = watch.next_probe
    assert results == [("gone", False, None)], "reported down once, after the third failure"
    assert probes == [10, 10, 10, 20, 40, 40, 40, 40]


def test_a_suspected_engine_is_probed_at_once_and_one_failure_marks_it_down():
    dead = EngineEndpoint("gone", f"tcp://127.0.0.1:{free_port()}")
    results, clock = [], Clock()
    health = EngineHealth(
        [dead], lambda *r: results.append(r), running=lambda: [], interval=10, clock=clock
    )
    health._watches["gone"].next_probe = clock.now + 10  # not due
    health.suspect("gone")
    health.check_once()
    assert results == [("gone", False, None)]


def test_the_thread_sleeps_until_the_next_probe_or_sweep_is_due():
    """No one-second tick: an idle daemon with engines wakes once per probe interval."""
    dead = EngineEndpoint("gone", f"tcp://127.0.0.1:{free_port()}")
    clock = Clock()
    health = EngineHealth(
        [dead], lambda *r: None, running=lambda: [], interval=10, sweep_every=300, clock=clock
    )
    health._next_sweep = clock.now + 300
    health._watches["gone"].next_probe = clock.now + 10
    assert health._until_next() == 10
    clock.now += 4
    assert health._until_next() == 6
    clock.now += 20  # overdue: at once
    assert health._until_next() == 0
