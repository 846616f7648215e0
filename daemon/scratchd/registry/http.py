"""A small keep-alive HTTP/1.1 client on the standard library's ``http.client``.

Why not requests: importing it (with urllib3, charset_normalizer, idna)
costs about 0.25 s of CPU, as much as baking and pushing a small image, and
``scratchd bake --push`` is meant to beat ``docker build && docker push``
by 2x. The registry protocol needs little: keep-alive connections per
origin, TLS with the system store or a CA file, bodies streamed from disk
with a known length, and a few redirects for GET/HEAD. This is that, and the
seam unit tests and benchmarks replace (:meth:`HttpClient.request`).

A registry, or anything on the path to it, may be hostile, so every request
is bounded (:class:`HttpLimits`, see :mod:`.bounds`): connect and per-read
timeouts, an overall deadline, a cap on the body read into memory.
Redirects never downgrade https to http and never carry ``Authorization``
to another origin.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

from scratchd.registry.bounds import (
    ConnectionFailed,
    DeadlineClock,
    DeadlineExceeded,
    HttpError,
    HttpLimits,
    ResponseTooLarge,
    Watchdog,
    read_body,
)

__all__ = [
    "ConnectionFailed",
    "DeadlineExceeded",
    "HttpClient",
    "HttpError",
    "HttpLimits",
    "Response",
    "ResponseTooLarge",
    "TlsFailed",
    "UnsafeRedirect",
    "origin",
]

_BLOCK = 1 << 20  # bytes per socket write when streaming a body
_MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}


class TlsFailed(HttpError):
    """The TLS handshake failed (untrusted certificate, or not a TLS server)."""


class UnsafeRedirect(HttpError):
    """A redirect from https to plain http: following it would expose the request."""


def origin(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of ``url``, the unit credentials are bound to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        port = -1  # a malformed port matches no registry
    return scheme, (parts.hostname or "").lower(), port


class Response:
    """Status, headers (case-insensitive) and, unless streamed away, the body."""

    def __init__(self, method: str, url: str, raw: http.client.HTTPResponse, content: bytes):
        self.method, self.url = method, url
        self.status_code = raw.status
        self.reason = raw.reason
        self.headers = raw.headers  # an email.message.Message: case-insensitive .get()
        self.content = content

    def json(self) -> Any:
        """The parsed body: a registry's JSON document, which callers check field by field."""
        return json.loads(self.content or b"null")

    def close(self) -> None:
        """Bodies are read eagerly, so there is nothing to release."""


class Stream(Protocol):
    """A streamed request body: its length up front, then blocks."""

    def read(self, size: int, /) -> bytes: ...

    def __len__(self) -> int: ...


Body = bytes | Callable[[], Stream] | None
_Key = tuple[str, str, bool | str]  # scheme, host:port, TLS verification: one idle pool each


class HttpClient:
    """Thread-safe; one per registry client. Idle connections are reused per origin."""

    def __init__(self, limits: HttpLimits | None = None) -> None:
        self.limits = limits or HttpLimits()
        self._idle: dict[_Key, list[http.client.HTTPConnection]] = {}
        self._contexts: dict[bool | str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._deadlines = DeadlineClock()

    def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        verify: bool | str = True,
    ) -> Response:
        """Send one request (following GET/HEAD redirects); ``body`` may be a factory."""
        headers = dict(headers or {})
        for _ in range(_MAX_REDIRECTS + 1):
            response = self._send(method, url, headers, body, verify)
            location = response.headers.get("Location")
            if method not in ("GET", "HEAD") or response.status_code not in (
                301,
                302,
                303,
                307,
                308,
            ):
                return response
            if not location:
                return response
            target = urljoin(url, location)
            if origin(url)[0] == "https" and origin(target)[0] != "https":
                where = f"{origin(target)[0]}://{urlsplit(target).netloc}"
                raise UnsafeRedirect(f"{method} {urlsplit(url).path}: redirected to {where}")
            if origin(target) != origin(url):
                headers.pop("Authorization", None)  # never hand our token to another origin
            url = target
        raise ConnectionFailed(
            f"{method} {urlsplit(url).path}: more than {_MAX_REDIRECTS} redirects"
        )

    def _send(
        self, method: str, url: str, headers: dict[str, str], body: Body, verify: bool | str
    ) -> Response:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        key: _Key = (parts.scheme, parts.netloc, verify)
        for fresh in (False, True):
            conn, reused = self._connection(key, fresh)
            data = body() if callable(body) else body
            watchdog = Watchdog(conn, self.limits.deadline, self._deadlines)
            try:
                raw = self._exchange(conn, method, path, headers, data)
                content = read_body(raw, self.limits.max_response)
            except ssl.SSLError as exc:
                conn.close()
                if watchdog.expired:
                    raise DeadlineExceeded(watchdog.reason()) from None
                raise TlsFailed(_tls_reason(exc)) from None
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if watchdog.expired:
                    raise DeadlineExceeded(watchdog.reason()) from None
                if reused and method in ("GET", "HEAD"):
                    continue  # a kept-alive connection died under us: safe to send again
                raise ConnectionFailed(_reason(exc)) from None
            except ResponseTooLarge:
                conn.close()
                raise
            finally:
                watchdog.cancel()
                close = getattr(data, "close", None)
                if close is not None:
                    close()
            if watchdog.expired:  # the body ended because the watchdog cut it short
                conn.close()
                raise DeadlineExceeded(watchdog.reason())
            self._release(key, conn, raw)
            return Response(method, url, raw, content)
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _exchange(
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        headers: dict[str, str],
        data: bytes | Stream | None,
    ) -> http.client.HTTPResponse:
        conn.putrequest(method, path, skip_accept_encoding=True)
        length = 0 if data is None else len(data)
        sent = {k.lower() for k in headers}
        if "user-agent" not in sent:
            conn.putheader("User-Agent", "scratchd")
        for name, value in headers.items():
            conn.putheader(name, value)
        if "content-length" not in sent and (
            data is not None or method in ("POST", "PUT", "PATCH")
        ):
            conn.putheader("Content-Length", str(length))
        conn.endheaders()
        if isinstance(data, bytes):
            conn.send(data)
        elif data is not None:
            _send_stream(conn, data)
        return conn.getresponse()

    def _connection(self, key: _Key, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        if not fresh:
            with self._lock:
                idle = self._idle.get(key) or []
                while idle:
                    conn = idle.pop()
                    if _alive(conn):
                        return conn, True
                    conn.close()  # the server closed it while it sat idle
        scheme, netloc, verify = key
        connect, read = self.limits.connect_timeout, self.limits.read_timeout
        if scheme == "https":
            conn = _HTTPS(netloc, timeout=connect, context=self._context(verify))
        else:
            conn = _HTTP(netloc, timeout=connect)
        conn.read_timeout = read
        return conn, False

    def _release(
        self, key: _Key, conn: http.client.HTTPConnection, raw: http.client.HTTPResponse
    ) -> None:
        if raw.will_close or (raw.getheader("Connection") or "").lower() == "close":
            conn.close()
            return
        with self._lock:
            self._idle.setdefault(key, []).append(conn)

    def _context(self, verify: bool | str) -> ssl.SSLContext:
        with self._lock:
            if verify not in self._contexts:
                if verify is False:
                    context = ssl._create_unverified_context()  # noqa: S323 - --insecure-registry
                else:
                    context = ssl.create_default_context(
                        cafile=verify if isinstance(verify, str) else None
                    )
                self._contexts[verify] = context
            return self._contexts[verify]

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()


class _TimeoutsMixin:
    """Connect with the short timeout, then wait for responses with the long one."""

    read_timeout: float = 300.0

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
        self.sock.settimeout(self.read_timeout)  # type: ignore[attr-defined]


class _HTTP(_TimeoutsMixin, http.client.HTTPConnection):
    pass


class _HTTPS(_TimeoutsMixin, http.client.HTTPSConnection):
    pass


def _send_stream(conn: http.client.HTTPConnection, data: Stream) -> None:
    """Zero-copy ``sendfile`` on plain sockets when the body offers it, else blocks."""
    send_to = getattr(data, "send_to", None)
    if send_to is not None and not isinstance(conn.sock, ssl.SSLSocket):
        send_to(conn.sock)
        return
    while block := data.read(_BLOCK):
        conn.send(block)


def _alive(conn: http.client.HTTPConnection) -> bool:
    """An idle connection is dead if its socket is readable (EOF or a stray byte)."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return str(exc) or type(exc).__name__


def _tls_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or "certificate verify failed"
    return exc.reason or str(exc)
