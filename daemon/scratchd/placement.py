"""Which engine runs a build: slots, labels, warm caches, health.

Pure bookkeeping (no Docker, no threads of its own), so the rules are
tested without engines and the scheduler layer may own it:

1. only engines that are up, have every label the repository requires and
   a free slot are candidates;
2. the engine that last built this repository wins (its cache volume is
   warm);
3. otherwise the least loaded (used / capacity), then the name, so the
   choice is stable.

A build that cannot be placed *now* waits in :meth:`Placer.acquire` until a
slot frees or an engine comes back. While it waits it is *next* on one
engine (at most one waiting build per engine, chosen by the same rules
among engines nobody is next on): that engine's freed slot is its, and
``on_next`` tells it the engine, so it can get its pipeline container
ready there while the running build finishes. An engine that goes down or
is removed by a reload loses its next build (``on_next(None)``), which then
takes whatever slot frees first. Being next holds no slot: at most
``capacity`` builds hold slots on an engine, whatever waits; one that can *never* be placed (no
engine has its labels) fails at once with :class:`PlacementError`, which
``check-config`` reports before that happens.

A reload changes the pool (:meth:`Placer.reconfigure`): a removed engine
takes no new build and is forgotten when its last running build releases
its slot; an added engine (or one whose address changed) waits, down,
for its first successful probe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from scratchd.errors import ConfigError


class PlacementError(ConfigError):
    """No configured engine can ever run this repository's builds."""


@dataclass
class EngineState:
    """One engine as placement sees it; ``facts`` is what its last probe said."""

    name: str
    capacity: int
    labels: frozenset[str] = frozenset()
    up: bool = True
    used: int = 0
    failures: int = 0
    facts: dict[str, object] = field(default_factory=dict)
    removed: bool = False  # by a reload: takes no build, gone when its last one ends
    next: str = ""  # the waiting build whose this engine's next free slot is

    @property
    def load(self) -> float:
        return self.used / self.capacity


@dataclass(frozen=True)
class Lease:
    """A slot on ``engine`` held by one build; give it back with :meth:`Placer.release`."""

    engine: str
    repo: str
    build: str


class Placer:
    """Hands out engine slots; thread-safe (workers acquire, the health thread flips up/down)."""

    def __init__(
        self,
        engines: Iterable[tuple[str, int, Iterable[str]]],
        *,
        on_lost: Callable[[str], None] = lambda _name: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._on_lost, self._on_change = on_lost, on_change
        self._engines = {
            name: EngineState(name, capacity, frozenset(labels))
            for name, capacity, labels in engines
        }
        self._last: dict[str, str] = {}  # repo -> engine that built it last
        self._leases: list[Lease] = []
        self._changed = threading.Condition()

    # -- placing ----------------------------------------------------------------

    def place(self, repo: str, build: str, required: Iterable[str] = ()) -> Lease | None:
        """A slot now, or None when every suitable engine is busy or down."""
        needed = frozenset(required)
        with self._changed:
            fitting = [e for e in self._engines.values() if needed <= e.labels and not e.removed]
            if not fitting:
                raise PlacementError(
                    f"repository {repo} requires labels {', '.join(sorted(needed))} "
                    "and no engine has all of them"
                )
            free = [e for e in fitting if e.up and e.used < e.capacity and e.next in ("", build)]
            if not free:
                return None
            warm = self._last.get(repo)
            chosen = min(free, key=lambda e: (e.next != build, e.name != warm, e.load, e.name))
            for engine in self._engines.values():
                if engine.next == build:
                    engine.next = ""
            chosen.used += 1
            self._last[repo] = chosen.name
            lease = Lease(chosen.name, repo, build)
            self._leases.append(lease)
        self._on_change()
        return lease

    def acquire(
        self,
        repo: str,
        build: str,
        required: Iterable[str] = (),
        *,
        cancel: threading.Event,
        on_wait: Callable[[str], None] = lambda _why: None,
        on_next: Callable[[str | None], None] = lambda _engine: None,
        poll: float = 0.5,
    ) -> Lease | None:
        """Wait for a slot; None when ``cancel`` is set first. ``on_wait`` hears why once.

        ``on_next`` hears the engine this build is next on whenever that
        changes (None: on none any more); it is not called for a build
        placed at once, nor once it holds its lease.
        """
        required = tuple(required)
        told = False
        nxt: str | None = None
        try:
            while not cancel.is_set():
                lease = self.place(repo, build, required)
                if lease is not None:
                    return lease
                if not told:
                    labels = f" with labels {', '.join(required)}" if required else ""
                    on_wait(f"waiting for a free slot on an engine{labels}")
                    told = True
                now = self._be_next(repo, build, frozenset(required))
                if now != nxt:
                    nxt = now
                    on_next(now)
                    continue  # a slot may have freed while it prepared
                with self._changed:
                    self._changed.wait(poll)
            return None
        finally:
            self._forget_next(build)

    def _be_next(self, repo: str, build: str, needed: frozenset[str]) -> str | None:
        """The engine ``build`` is next on: kept while it stays usable, else a new one."""
        with self._changed:
            usable = [
                e for e in self._engines.values() if needed <= e.labels and e.up and not e.removed
            ]
            for engine in self._engines.values():
                if engine.next == build:
                    if engine in usable:
                        return engine.name
                    engine.next = ""  # its labels changed by a reload
            open_ = [e for e in usable if not e.next]
            if not open_:
                return None
            warm = self._last.get(repo)
            chosen = min(open_, key=lambda e: (e.name != warm, e.load, e.name))
            chosen.next = build
            return chosen.name

    def _forget_next(self, build: str) -> None:
        with self._changed:
            for engine in self._engines.values():
                if engine.next == build:
                    engine.next = ""
                    self._changed.notify_all()  # its slot may be free for another waiter

    def release(self, lease: Lease, *, lost: bool = False) -> None:
        """Give the slot back; ``lost``: the build hit an engine error (probe it now)."""
        with self._changed:
            if lease in self._leases:
                self._leases.remove(lease)
                engine = self._engines[lease.engine]
                engine.used -= 1
                if engine.removed and not engine.used:
                    del self._engines[lease.engine]
            self._changed.notify_all()
        if lost:
            self._on_lost(lease.engine)
        self._on_change()

    # -- health -------------------------------------------------------------------

    def mark(self, name: str, up: bool, facts: dict[str, object] | None = None) -> bool:
        """Record a probe's result; returns True when the engine changed state."""
        with self._changed:
            engine = self._engines.get(name)
            if engine is None:  # removed by a reload while it was being probed
                return False
            changed = engine.up != up
            shown = changed or (facts is not None and engine.facts != facts)
            engine.up = up
            if not up:
                engine.next = ""  # its next build takes a slot elsewhere
            if facts is not None:
                engine.facts = dict(facts)
            self._changed.notify_all()
        if shown:  # a probe that found all as before rewrites no status file
            self._on_change()
        return changed

    def reconfigure(
        self, engines: Iterable[tuple[str, int, Iterable[str]]], fresh: Iterable[str] = ()
    ) -> None:
        """Take a reloaded pool; ``fresh``: names that are new or now point elsewhere.

        Kept engines keep their state and running builds (capacity and labels
        change at once). Fresh ones start down: they take builds after their
        first successful probe. Missing ones are marked removed (their running
        builds finish) and forgotten when their last slot is released.
        """
        wanted = {name: (capacity, frozenset(labels)) for name, capacity, labels in engines}
        fresh = set(fresh)
        with self._changed:
            old = self._engines
            new: dict[str, EngineState] = {}
            for name, (capacity, labels) in wanted.items():
                engine = old.get(name)
                if engine is None or name in fresh:
                    used = engine.used if engine is not None else 0
                    new[name] = EngineState(name, capacity, labels, up=False, used=used)
                else:
                    engine.capacity, engine.labels, engine.removed = capacity, labels, False
                    new[name] = engine
            for name, engine in old.items():
                if name not in wanted and engine.used:
                    engine.removed, engine.next = True, ""
                    new[name] = engine
            self._engines = new
            self._changed.notify_all()
        self._on_change()

    # -- reading ------------------------------------------------------------------

    def engines(self) -> list[EngineState]:
        """Copies, in configuration order (for ``scratchd status``)."""
        with self._changed:
            return [
                EngineState(
                    e.name, e.capacity, e.labels, e.up, e.used, e.failures, dict(e.facts), e.removed
                )
                for e in self._engines.values()
            ]

    def leases(self) -> list[Lease]:
        with self._changed:
            return list(self._leases)
