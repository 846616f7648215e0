"""Bounds of one HTTP exchange with a registry that may be hostile.

Per-read timeouts cannot bound a peer that sends one byte just before each
would expire, and a body without ``Content-Length`` (or with one of 2^40)
can fill memory. :class:`Watchdog` gives a request an overall deadline by
shutting its socket down; :func:`read_body` caps what is read into memory,
checking ``Content-Length`` before reading and the bytes actually received
for chunked or unsized bodies. The client only ever reads small bodies
(manifests, tokens, errors): blobs go up, never down.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_READ = 64 << 10  # bytes per read of a response body


@dataclass(frozen=True)
class HttpLimits:
    """Bounds of one request; the daemon config's ``registry_*`` keys set them.

    ``deadline`` covers the whole request: connecting, sending the body and
    reading the response, so it must leave room for the largest monolithic
    blob upload on the slowest link the operator expects.
    """

    connect_timeout: float = 10.0  # seconds to establish TCP (and TLS)
    read_timeout: float = 300.0  # seconds any single read or write may block
    deadline: float = 900.0  # seconds for the whole request
    max_response: int = 4 << 20  # bytes of a response body read into memory


class HttpError(Exception):
    """Base of the HTTP client's failures; the registry transport turns them into RegistryErrors."""


class ConnectionFailed(HttpError):
    """No response: refused, reset, timed out, or the peer closed the connection."""


class DeadlineExceeded(ConnectionFailed):
    """The peer answered, but not completely within :attr:`HttpLimits.deadline`."""


class ResponseTooLarge(HttpError):
    """The response body is larger than :attr:`HttpLimits.max_response`."""


class DeadlineClock:
    """One thread that fires every pending request deadline of one HTTP client.

    A :class:`threading.Timer` per request is a thread started and stopped
    per request: about a fifth of a millisecond of CPU each, and a push
    makes 7 to 17 requests on cores the registry needs. Here deadlines wait
    in a heap and one daemon thread, started with the first, sleeps until
    the earliest; it ends after ``idle_exit`` seconds without any (a client
    made for one push leaves no thread behind). A cancelled deadline is
    dropped when it reaches the top, or at once when cancelled ones
    outnumber the pending.
    """

    def __init__(self, idle_exit: float = 30.0) -> None:
        self._idle_exit = idle_exit
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._pending = 0
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def call_after(self, seconds: float, callback: Callable[[], None]) -> _Deadline:
        """Run ``callback`` on the clock's thread in ``seconds`` unless cancelled first."""
        deadline = _Deadline(callback)
        with self._wake:
            heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), deadline))
            self._pending += 1
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()
            elif self._heap[0][2] is deadline:
                self._wake.notify()  # earlier than what the thread sleeps towards
        return deadline

    def cancel(self, deadline: _Deadline) -> None:
        with self._wake:
            if deadline.pending:
                deadline.pending = False
                self._pending -= 1
                if len(self._heap) > 2 * self._pending + 64:
                    self._heap = [e for e in self._heap if e[2].pending]
                    heapq.heapify(self._heap)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._heap and not self._heap[0][2].pending:
                    heapq.heappop(self._heap)
                if not self._heap:
                    if not self._wake.wait(self._idle_exit) and not self._heap:
                        self._thread = None  # the next deadline starts a new one
                        return
                    continue
                due, _, deadline = self._heap[0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._wake.wait(delay)
                    continue
                heapq.heappop(self._heap)
                deadline.pending = False
                self._pending -= 1
            try:
                deadline.callback()
            except Exception:  # one bad callback must not stop every other deadline
                log.exception("request deadline callback failed")


class _Deadline:
    __slots__ = ("callback", "pending")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.pending = True


class Watchdog:
    """Shuts a connection's socket down when the request's deadline passes.

    Per-read timeouts cannot bound a peer that sends one byte just before
    each would expire; a clock thread can. Shutting the socket down (not
    closing it: the fd stays valid for the thread blocked on it) makes the
    blocked read or write return at once.
    """

    def __init__(
        self, conn: http.client.HTTPConnection, seconds: float, clock: DeadlineClock
    ) -> None:
        self.expired = False
        self._seconds = seconds
        self._conn = conn
        self._clock = clock
        self._lock = threading.Lock()
        self._cancelled = False
        self._deadline = clock.call_after(seconds, self._expire)

    def _expire(self) -> None:
        self.expired = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # the plain socket's shutdown, even for TLS
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return
        with self._lock:  # still connecting: cut the socket as soon as there is one
            if not self._cancelled:
                self._deadline = self._clock.call_after(0.05, self._expire)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._clock.cancel(self._deadline)

    def reason(self) -> str:
        return f"no complete response within {self._seconds:g}s (request deadline)"


def read_body(raw: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; also for HEAD (marks the response done)."""
    announced = raw.length  # None when chunked or unsized; 0 for HEAD, 204, 304
    if announced is not None and announced > limit:
        raise ResponseTooLarge(f"response body of {announced} bytes exceeds the {limit}-byte limit")
    parts, total = [], 0
    while block := raw.read(_READ):
        total += len(block)
        if total > limit:
            raise ResponseTooLarge(f"response body exceeds the {limit}-byte limit")
        parts.append(block)
    if announced is not None and total < announced:
        raise http.client.IncompleteRead(b"", announced - total)
    raw.read()  # a no-op that closes the response, so the connection may be reused
    return b"".join(parts)
