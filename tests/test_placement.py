"""Placement rules, without engines: slots, labels, warm cache, least loaded, health."""

from __future__ import annotations

import threading
import time

import pytest

from scratchd.placement import PlacementError, Placer


def placer(**kw):
    return Placer([("e1", 1, ["amd64"]), ("e2", 2, ["amd64", "big"]), ("e3", 1, [])], **kw)


def test_least_loaded_then_name_within_capacity():
    p = placer()
    names = [p.place(f"r{i}", str(i)).engine for i in range(4)]
    # e1 and e3 are empty (load 0), e2 has 2 slots: e1, e2, e3, then e2's second slot.
    assert names == ["e1", "e2", "e3", "e2"]
    assert p.place("r9", "9") is None
    assert [(e.name, e.used) for e in p.engines()] == [("e1", 1), ("e2", 2), ("e3", 1)]


def test_labels_route_and_unsatisfiable_labels_are_an_error():
    p = placer()
    assert p.place("r", "1", ["big"]).engine == "e2"
    assert p.place("r", "2", ["big"]).engine == "e2"
    assert p.place("r", "3", ["big"]) is None  # e2 is full; e1 does not have "big"
    with pytest.raises(PlacementError, match="requires labels arm64"):
        p.place("arm", "4", ["arm64"])


def test_the_engine_that_last_built_the_repo_wins_while_it_has_a_slot():
    p = placer()
    first = p.place("cities", "1")
    p.place("other", "2")
    p.release(first)
    assert p.place("cities", "3").engine == first.engine == "e1"


def test_down_engines_get_nothing_and_lost_builds_are_reported():
    lost, changes = [], []
    p = placer(on_lost=lost.append, on_change=lambda: changes.append(1))
    assert p.mark("e1", False)
    assert not p.mark("e1", False)
    lease = p.place("cities", "1")
    assert lease.engine == "e2"  # e1 is down; e2 and e3 are both empty: by name
    p.release(lease, lost=True)
    assert lost == ["e2"] and changes
    p.mark("e2", False)
    p.mark("e3", False)
    assert p.place("cities", "2") is None
    p.mark("e1", True)
    assert p.place("cities", "3").engine == "e1"


def test_acquire_waits_for_a_slot_and_gives_up_on_cancel():
    p = Placer([("only", 1, [])])
    held = p.place("a", "1")
    cancel = threading.Event()
    told, got = [], []
    waiter = threading.Thread(
        target=lambda: got.append(p.acquire("b", "2", cancel=cancel, on_wait=told.append))
    )
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive() and told == ["waiting for a free slot on an engine"]
    p.release(held)
    waiter.join(5)
    assert got[0].engine == "only"
    cancel.set()
    assert p.acquire("c", "3", cancel=cancel) is None


def test_a_probe_that_finds_nothing_new_rewrites_no_status():
    """Each probe reports; only a change (up/down, new facts) reaches the status file."""
    changes = []
    p = placer(on_change=lambda: changes.append(1))
    facts = {"version": "27.0", "cpus": 4, "memory": 1}
    p.mark("e1", True, facts)
    assert len(changes) == 1  # the first facts
    p.mark("e1", True, dict(facts))
    p.mark("e1", True)
    assert len(changes) == 1  # the same again: nothing written
    p.mark("e1", False)
    assert len(changes) == 2


def test_a_reload_removes_adds_and_changes_engines():
    p = placer()
    running = p.place("cities", "1", ["big"])
    assert running.engine == "e2"
    # e2 removed while it runs a build, e4 added, e3 moved elsewhere, e1 gets 2 slots.
    p.reconfigure([("e1", 2, ["amd64"]), ("e3", 1, []), ("e4", 1, ["big"])], fresh={"e3", "e4"})
    shown = {e.name: (e.up, e.used, e.capacity, e.removed) for e in p.engines()}
    assert shown == {
        "e1": (True, 0, 2, False),
        "e3": (False, 0, 1, False),  # down until its first probe answers
        "e4": (False, 0, 1, False),
        "e2": (True, 1, 2, True),  # removed, still running its build
    }
    assert p.place("x", "2", ["big"]) is None  # e4 is not up yet; e2 takes no new build
    p.mark("e4", True)
    assert p.place("x", "3", ["big"]).engine == "e4"
    p.release(running)
    assert [e.name for e in p.engines()] == ["e1", "e3", "e4"]  # e2 forgotten
    assert p.mark("e2", False) is False  # a late probe of a removed engine is ignored


def _waiter(p, repo, build, cancel, told):
    got: list = []
    thread = threading.Thread(
        target=lambda: got.append(
            p.acquire(repo, build, cancel=cancel, on_next=told.append, poll=0.05)
        )
    )
    thread.start()
    return thread, got


def _until(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_a_waiting_build_is_next_on_one_engine_and_gets_its_freed_slot():
    p = Placer([("e1", 1, []), ("e2", 1, [])])
    first, second = p.place("a", "1"), p.place("b", "2")
    cancel = threading.Event()
    told3: list = []
    told4: list = []
    w3, got3 = _waiter(p, "a", "3", cancel, told3)
    assert _until(lambda: told3 == ["e1"])  # warm: e1 built repo a last
    w4, got4 = _waiter(p, "c", "4", cancel, told4)
    assert _until(lambda: told4 == ["e2"])  # one waiting build per engine
    # Being next holds no slot, and a freed slot is the next build's, not a newcomer's.
    assert [e.used for e in p.engines()] == [1, 1]
    p.release(second)
    assert p.place("d", "5") is None
    w4.join(5)
    assert got4[0].engine == "e2" and told4 == ["e2"]
    p.release(first)
    w3.join(5)
    assert got3[0].engine == "e1"
    assert [e.next for e in p.engines()] == ["", ""]


def test_an_engine_that_goes_down_or_is_removed_loses_its_next_build():
    p = Placer([("e1", 1, []), ("e2", 1, [])])
    p.place("a", "1")
    p.place("b", "2")
    cancel = threading.Event()
    told: list = []
    waiter, got = _waiter(p, "a", "3", cancel, told)
    assert _until(lambda: told == ["e1"])
    p.mark("e1", False)
    assert _until(lambda: told == ["e1", "e2"])  # it waits on the other engine now
    p.reconfigure([("e1", 1, [])])  # e2 removed: its running build finishes there
    assert _until(lambda: told == ["e1", "e2", None])
    cancel.set()
    waiter.join(5)
    assert got == [None] and [e.next for e in p.engines()] == ["", ""]
