"""The request deadline clock: one thread fires every deadline of a client, in time order.

The end-to-end proof that a deadline cuts a trickling response is
tests/registry/test_hostile.py; these pin what the shared clock adds.
"""

from __future__ import annotations

import threading

from scratchd.registry.bounds import DeadlineClock
from scratchd.registry.http import HttpClient


def _clock_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "http-deadlines"]


def test_deadlines_fire_in_time_order_on_one_thread():
    clock, fired, done = DeadlineClock(), [], threading.Event()
    before = len(_clock_threads())

    def note(name):
        fired.append((name, threading.current_thread().name))
        if len(fired) == 3:
            done.set()

    clock.call_after(0.30, lambda: note("late"))
    clock.call_after(0.10, lambda: note("middle"))
    clock.call_after(0.02, lambda: note("early"))  # earlier than what the thread sleeps towards
    assert done.wait(5)
    assert [name for name, _ in fired] == ["early", "middle", "late"]
    assert {thread for _, thread in fired} == {"http-deadlines"}
    assert len(_clock_threads()) == before + 1


def test_a_cancelled_deadline_never_fires():
    clock, fired = DeadlineClock(), threading.Event()
    deadline = clock.call_after(0.05, fired.set)
    clock.cancel(deadline)
    later = threading.Event()
    clock.call_after(0.15, later.set)
    assert later.wait(5)
    assert not fired.is_set()


def test_cancelled_deadlines_do_not_pile_up():
    """A daemon cancels thousands of 15-minute deadlines: the heap must not keep them."""
    clock = DeadlineClock()
    keep = clock.call_after(900, lambda: None)
    for _ in range(1000):
        clock.cancel(clock.call_after(900, lambda: None))
    assert len(clock._heap) <= 2 * 1 + 64 + 1
    clock.cancel(keep)


def test_a_failing_callback_does_not_stop_the_clock():
    clock, after = DeadlineClock(), threading.Event()
    clock.call_after(0.01, lambda: 1 / 0)
    clock.call_after(0.05, after.set)
    assert after.wait(5)


def test_requests_start_no_thread_each(registry, monkeypatch):
    """A thread per request was a fifth of a millisecond of CPU each on the registry's cores."""
    http = HttpClient()
    http.request("GET", f"http://{registry.host}/v2/")  # the clock's thread starts here
    started = []
    real_start = threading.Thread.start

    def counting_start(thread):
        started.append(thread.name)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    for _ in range(20):
        assert http.request("GET", f"http://{registry.host}/v2/").status_code == 200
    assert started == []


def test_the_thread_ends_when_idle_and_a_new_deadline_starts_another():
    clock = DeadlineClock(idle_exit=0.1)
    first = threading.Event()
    clock.call_after(0.01, first.set)
    assert first.wait(5)
    thread = clock._thread
    assert thread is not None
    thread.join(5)
    assert not thread.is_alive()
    again = threading.Event()
    clock.call_after(0.01, again.set)
    assert again.wait(5)
