"""The sender: a thread beside the build path that empties the outbox.

It never touches a build: it only reads events the store wrote and records
delivery outcomes, each in its own short transaction, so a slow or dead
receiver costs builds nothing. The rules:

- an event gets one delivery per sink that wants it (``route``), once;
- a delivery is recorded ``delivered`` *before* the next one is attempted,
  so after a success it is never sent again, even across ``kill -9``
  (a crash between the receiver's 2xx and that commit can repeat it: the
  receiver drops it by ``webhook-id``);
- a failure is retried after ``retry_delay * 2**attempts`` (capped at
  ``retry_max_delay``); when a sink is unreachable its other due events wait
  for the same retry instead of each failing in turn;
- ``give_up_after`` the event was written, it is dropped with a logged error.

``config()`` returns the current :class:`~scratchd.config.Config` (a SIGHUP
may change sinks); ``make_sink(sink_config)`` builds a sink with
``send(body, event_id)`` and ``secrets()``; ``mask(value)`` registers a
secret with the log masker before it is used.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from scratchd.errors import CredentialError, DeliveryError, ScratchdError
from scratchd.notify.events import CommitFacts, payload
from scratchd.notify.sinks import make_sink as default_make_sink
from scratchd.redact import Redactor

if TYPE_CHECKING:
    from scratchd.config import Config

log = logging.getLogger(__name__)

#: Seconds to sleep when nothing is due and nobody woke the sender: the daemon wakes
#: it whenever its loop sees builds change (events are written with those changes),
#: so this is only a safety net, long enough that an idle daemon stays still.
IDLE = 30.0
RETRY_AFTER_FAULT = 2.0  # seconds: the database was busy or broken
PRUNE_EVERY = 3600.0


class Sender:
    def __init__(
        self,
        store,
        config: Callable[[], Config],
        *,
        commit_facts: CommitFacts | None = None,
        make_sink: Callable = default_make_sink,
        mask: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._config = store, config
        self._facts, self._make_sink = commit_facts, make_sink
        self._mask, self._clock = mask, clock
        self._redactor = Redactor()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_prune = 0.0

    # -- thread ------------------------------------------------------------------

    def start(self) -> Sender:
        self._thread = threading.Thread(target=self._loop, name="scratchd-notify", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self) -> None:
        """Look at the outbox now: the daemon saw builds change, so events may be new."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
                wait = self._until_next()
            except ScratchdError as exc:  # the database was busy or broken: try again
                log.error("notifications: %s", exc)
                wait = RETRY_AFTER_FAULT
            except Exception:  # a bug must not end notifications for the daemon's lifetime
                log.exception("notifications: unexpected error; retrying")
                wait = RETRY_AFTER_FAULT
            self._wake.wait(wait)
            self._wake.clear()

    def _until_next(self) -> float:
        at = self._store.next_delivery_at()
        return IDLE if at is None else min(IDLE, max(0.0, at - self._clock()))

    # -- one round ------------------------------------------------------------------

    def run_once(self) -> int:
        """Route new events, attempt every due delivery; returns how many were attempted."""
        notify = self._config().notify
        now = self._clock()
        self._store.route(lambda e: self._sinks_for(notify, e, now), now)
        held: set[str] = set()  # unreachable sinks: the rest of their events wait
        attempted = 0
        for delivery in self._store.due_deliveries(now):
            if self._stop.is_set():
                break
            if delivery.sink in held:
                continue
            attempted += 1
            retry_at = self._deliver(notify, delivery)
            if retry_at is not None:
                held.add(delivery.sink)
                self._store.postpone(delivery.sink, retry_at)
        if now >= self._next_prune:
            self._store.prune_outbox(now - max(notify.give_up_after, 7 * 86400))
            self._next_prune = now + PRUNE_EVERY
        return attempted

    def _sinks_for(self, notify, event, now: float) -> list[str]:
        if now - event.created_at > notify.give_up_after:
            return []  # written long ago (sinks added since, or the daemon was down): too late
        return notify.sinks_for(event.type, event.repo)

    def _deliver(self, notify, delivery) -> float | None:
        """Send one delivery; returns the sink's retry time when the sink is unreachable."""
        event, name = delivery.event, delivery.sink
        sink_config = notify.sink(name)
        if sink_config is None:
            self._give_up(event, name, "the sink is no longer configured")
            return None
        try:
            sink = self._make_sink(sink_config)
            self._register(sink)
            body = payload(event, web_url=notify.web_url, commit_facts=self._facts)
            sink.send(body, event.event_id)
        except (DeliveryError, CredentialError) as exc:
            return self._failed(notify, delivery, exc)
        self._store.delivered(event.id, name, self._clock())
        log.info(
            "notified %s of %s (build %s)", name, event.type, event.build_id, extra=_fields(event)
        )
        return None

    def _failed(self, notify, delivery, exc: ScratchdError) -> float | None:
        event, name = delivery.event, delivery.sink
        reason = self._redactor.redact(str(exc))
        now = self._clock()
        delay = backoff(notify, delivery.attempts)
        if now + delay - event.created_at > notify.give_up_after:
            self._give_up(event, name, f"{reason}; {delivery.attempts + 1} attempts")
            return None
        self._store.retry_later(event.id, name, now + delay, reason)
        log.info("%s; retrying in %.1fs", reason, delay, extra=_fields(event))
        return now + delay if getattr(exc, "unreachable", False) else None

    def _give_up(self, event, name: str, reason: str) -> None:
        self._store.gave_up(event.id, name, self._clock(), reason)
        log.error(
            "gave up notifying %s of %s (build %s, event %s): %s",
            name,
            event.type,
            event.build_id,
            event.event_id,
            reason,
            extra=_fields(event),
        )

    def _register(self, sink) -> None:
        try:
            values = sink.secrets()
        except CredentialError:
            return  # send() reports it
        self._redactor.add(*values)
        if self._mask is not None:
            for value in values:
                self._mask(value)


def backoff(notify, attempts: int) -> float:
    """``retry_delay * 2**attempts`` up to ``retry_max_delay``; any attempt count is fine."""
    return min(notify.retry_max_delay, notify.retry_delay * 2.0 ** min(attempts, 40))


def _fields(event) -> dict:
    return {"REPO": event.repo, "BUILD_ID": event.build_id, "NOTIFY_EVENT": event.type}
