"""Health of the engine pool: pings, down after repeated failures, re-probes with backoff.

One thread for all engines. An up engine is pinged every ``interval``;
after ``fail_after`` failures in a row it is reported down and re-probed
with a doubling delay (capped at ``max_backoff``), and reported up again as
soon as it answers. A build that lost its engine calls :meth:`suspect`, so
the next probe of that engine comes at once instead of when it is due.
Between probes the thread sleeps; it has no tick of its own.

An engine that answers gets its builds' client and spare connections
opened (:meth:`~scratchd.runner.engines.EngineEndpoint.keep_warm`, in the
background), so its first build pays no handshake.

The same thread removes orphans (containers labelled as scratchd's whose
build is not running): first thing at start, then every ``sweep_every``,
and on an engine as it comes back up.

A reload hands over a new set of engines (:meth:`EngineHealth.reconfigure`):
new ones (and those whose address changed) are probed at once and count
as down until they answer; removed ones are no longer probed or swept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

from scratchd.errors import BackendError
from scratchd.runner.engines import EngineEndpoint, EngineFacts, probe, remove_orphans

log = logging.getLogger(__name__)

#: ``on_result(engine name, up, facts or None)``; placement records it.
ResultSink = Callable[[str, bool, EngineFacts | None], None]


@dataclass
class _Watch:
    endpoint: EngineEndpoint
    failures: int = 0
    up: bool = True
    next_probe: float = 0.0
    added: bool = False  # by a reload, not yet answered


class EngineHealth:
    """Probes ``endpoints``; see the module docstring."""

    def __init__(
        self,
        endpoints: Sequence[EngineEndpoint],
        on_result: ResultSink,
        running: Callable[[], Collection[str]],
        *,
        interval: float = 10.0,
        fail_after: int = 3,
        max_backoff: float = 300.0,
        sweep_every: float = 300.0,
        probe_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._watches = {e.name: _Watch(e) for e in endpoints}
        self._on_result, self._running = on_result, running
        self._interval, self._fail_after = interval, fail_after
        self._max_backoff, self._sweep_every = max_backoff, sweep_every
        self._probe_timeout, self._clock = probe_timeout, clock
        self._next_sweep = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="scratchd-engines", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self._probe_timeout * 2)

    def reconfigure(self, endpoints: Sequence[EngineEndpoint], fresh: Collection[str]) -> None:
        """A reload's engines; ``fresh`` names are new or point elsewhere: probed now.

        The health thread may be iterating the old set: it is replaced, never changed.
        """
        old = self._watches
        watches = {}
        for endpoint in endpoints:
            kept = old.get(endpoint.name)
            if kept is None or endpoint.name in fresh:
                kept = _Watch(endpoint, up=False, added=True)
            watches[endpoint.name] = kept
        self._watches = watches
        self._wake.set()

    def suspect(self, name: str) -> None:
        """A build lost this engine: probe it now."""
        watch = self._watches.get(name)
        if watch is not None:
            # The build's failure counts: one more failed probe and the engine is down.
            watch.failures = max(watch.failures, self._fail_after - 1)
            watch.next_probe = 0.0
            self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._wake.wait(self._until_next())
            self._wake.clear()

    def _until_next(self) -> float:
        """Seconds until the next probe or sweep is due (:meth:`suspect` wakes it sooner).

        No fixed tick: with every engine up, the thread wakes once per ``interval``.
        """
        due = [w.next_probe for w in self._watches.values()] + [self._next_sweep]
        return max(0.0, min(due) - self._clock())

    def check_once(self) -> None:
        """Probe every engine that is due, then sweep orphans if that is due."""
        now = self._clock()
        for watch in list(self._watches.values()):
            if now >= watch.next_probe:
                self._probe(watch)
        if now >= self._next_sweep:
            self._next_sweep = now + self._sweep_every
            self.sweep()

    def sweep(self) -> int:
        """Remove orphans on every up engine; returns how many containers went."""
        running = {str(b) for b in self._running()}
        return sum(remove_orphans(w.endpoint, running) for w in self._watches.values() if w.up)

    def _probe(self, watch: _Watch) -> None:
        name = watch.endpoint.name
        try:
            facts = probe(watch.endpoint, self._probe_timeout)
        except BackendError as exc:
            watch.failures += 1
            if watch.added and watch.failures == 1:
                log.warning("engine %s does not answer yet: %s", name, exc, extra={"ENGINE": name})
            if watch.up and watch.failures >= self._fail_after:
                watch.up = False
                log.error("engine %s is down: %s", name, exc, extra={"ENGINE": name})
                self._on_result(name, False, None)
            delay = self._interval if watch.up else self._backoff(watch.failures)
            watch.next_probe = self._clock() + delay
            return
        came_back = not watch.up
        watch.failures, watch.up = 0, True
        watch.endpoint.keep_warm()  # the next build's calls find open connections
        watch.next_probe = self._clock() + self._interval
        if came_back:
            news = "answers: it takes builds now" if watch.added else "is back"
            watch.added = False
            log.warning("engine %s %s", name, news, extra={"ENGINE": name})
            remove_orphans(watch.endpoint, {str(b) for b in self._running()})
        self._on_result(name, True, facts)

    def _backoff(self, failures: int) -> float:
        extra = max(0, failures - self._fail_after)
        return min(self._max_backoff, self._interval * 2**extra)
