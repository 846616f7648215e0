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
import http.client
import socket
import threading
from dataclasses import dataclass

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


class Watchdog:
    """Shuts a connection's socket down when the request's deadline passes.

    Per-read timeouts cannot bound a peer that sends one byte just before
    each would expire; a timer thread can. Shutting the socket down (not
    closing it: the fd stays valid for the thread blocked on it) makes the
    blocked read or write return at once.
    """

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.expired = False
        self._seconds = seconds
        self._conn = conn
        self._lock = threading.Lock()
        self._cancelled = False
        self._start(seconds)

    def _start(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # the plain socket's shutdown, even for TLS
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            return
        with self._lock:  # still connecting: cut the socket as soon as there is one
            if not self._cancelled:
                self._start(0.05)

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            self._timer.cancel()

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
