"""Backoff arithmetic and bounds, with an injected clock and sleep."""

from __future__ import annotations

import pytest

from scratchd.errors import RegistryError
from scratchd.registry.retry import Retryable, RetryPolicy, parse_retry_after


class _Clock:
    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _policy(clock: _Clock, **kwargs) -> RetryPolicy:
    kwargs.setdefault("jitter", lambda: 0.5)  # jitter factor 1.0: exact backoff
    return RetryPolicy(sleep=clock.sleep, clock=lambda: clock.now, **kwargs)


def _failing(times: int, **kwargs):
    calls = []

    def operation():
        calls.append(1)
        if len(calls) <= times:
            raise Retryable("HTTP 503", status=503, **kwargs)
        return "ok"

    return operation, calls


def test_exponential_backoff_then_success():
    clock = _Clock()
    operation, calls = _failing(3)
    assert _policy(clock, base=1, cap=100).call(operation, "x") == "ok"
    assert clock.sleeps == [1, 2, 4] and len(calls) == 4


def test_backoff_is_capped_and_jittered():
    clock = _Clock()
    policy = _policy(clock, base=1, cap=3, jitter=lambda: 0.0)
    assert [policy.delay(n, None) for n in range(4)] == [0.5, 1.0, 1.5, 1.5]
    high = _policy(clock, base=1, cap=3, jitter=lambda: 0.999)
    assert high.delay(5, None) == pytest.approx(3 * 1.499)


def test_retry_after_wins_over_a_shorter_backoff():
    clock = _Clock()
    operation, _ = _failing(1, retry_after=7.0)
    _policy(clock, base=1).call(operation, "x")
    assert clock.sleeps == [7.0]


def test_attempts_bound_gives_a_clear_error():
    clock = _Clock()
    operation, calls = _failing(100)
    with pytest.raises(
        RegistryError, match=r"HTTP 503 \(gave up on upload after 4 attempts\)"
    ) as e:
        _policy(clock, attempts=4).call(operation, "upload")
    assert len(calls) == 4 and e.value.status == 503
    assert not isinstance(e.value, Retryable)  # callers up the stack must not retry again


def test_time_budget_bounds_the_retries():
    clock = _Clock()
    operation, calls = _failing(100)
    with pytest.raises(RegistryError, match="gave up"):
        _policy(clock, attempts=100, base=1, cap=8, budget=20).call(operation, "x")
    assert clock.now <= 20 and len(calls) < 10


def test_other_errors_are_not_retried():
    clock = _Clock()

    def operation():
        raise RegistryError("HTTP 404", status=404)

    with pytest.raises(RegistryError, match="404"):
        _policy(clock).call(operation, "x")
    assert clock.sleeps == []


def test_parse_retry_after():
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert parse_retry_after(date, now=lambda: 1445412480 - 30) == pytest.approx(30)
    assert parse_retry_after(date, now=lambda: 1445412480 + 30) == 0.0
