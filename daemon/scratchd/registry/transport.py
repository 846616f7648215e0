"""One authenticated HTTP request to a registry, with errors made readable.

Decides the scheme per host (HTTPS with the system trust store or
``--ca-file``; plain HTTP only for loopback hosts and ``--insecure-registry``
ones, the same rule Docker applies), answers a 401 by re-authenticating once,
and turns any other failure into a :class:`RegistryError` that carries the
HTTP status and the registry's error code but never a credential or the
upload's opaque state token. The registry's ``Authorization`` goes only to
the registry's own origin (scheme, host and port as learned by the ping):
an upload ``Location`` on another host, port or scheme gets the request
without it. Failures worth retrying are raised as
:class:`~scratchd.registry.retry.Retryable`; *whether* to retry is up to the
caller, because a broken blob upload must restart from its ``POST``.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from scratchd.errors import AuthError, RegistryError
from scratchd.redact import Redactor
from scratchd.registry.auth import Authenticator
from scratchd.registry.challenge import Challenge, parse_challenges
from scratchd.registry.http import (
    Body,
    ConnectionFailed,
    DeadlineExceeded,
    HttpClient,
    HttpError,
    Response,
    TlsFailed,
    origin,
)
from scratchd.registry.reference import is_loopback
from scratchd.registry.retry import RETRY_STATUSES, Retryable, parse_retry_after

log = logging.getLogger(__name__)

_QUERY = re.compile(r"\?[^\s'\")]*")
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


class Transport:
    """Sends requests for :class:`RegistryClient`; one per client, thread-safe."""

    def __init__(
        self,
        http: HttpClient,
        authenticator: Authenticator,
        *,
        insecure: Iterable[str] = (),
        ca_file: str | None = None,
    ) -> None:
        self.http = http
        self.auth = authenticator
        self._insecure = frozenset(insecure)
        self._ca_file = ca_file
        self._bases: dict[str, str] = {}
        self._lock = threading.Lock()

    def verify(self, url: str) -> bool | str:
        """TLS verification for ``url``: off for --insecure-registry hosts."""
        host = urlsplit(url).netloc
        if host in self._insecure:
            return False
        return self._ca_file or True

    def base(self, host: str) -> str:
        """``https://host`` or ``http://host``; pings the registry the first time."""
        with self._lock:
            known = self._bases.get(host)
        return known or self.ping(host)

    def ping(self, host: str) -> str:
        """``GET /v2/``: learn the scheme and the auth challenge of ``host``.

        Remote registries get HTTPS only; ``--insecure-registry`` ones HTTPS,
        then HTTP. Loopback ones are asked over plain HTTP first: no trust
        store to load and no failed handshake for the common local registry,
        and a TLS-only one answers that with a 400, so HTTPS comes next.
        """
        schemes: tuple[str, ...]
        if is_loopback(host):
            schemes = ("http", "https")
        else:
            schemes = ("https", "http") if host in self._insecure else ("https",)
        error: RegistryError | None = None
        for scheme in schemes:
            base = f"{scheme}://{host}"
            try:
                response = self._ping_at(base)
            except _Answered as answered:
                raise answered.error from None  # it speaks this scheme, badly: no fallback
            except Retryable as exc:
                if exc.status is not None:
                    raise  # the server answered (503 ...): it speaks this scheme
                error = exc
                continue
            except RegistryError as exc:
                error = exc
                continue
            if response.status_code in (200, 401):
                return self._learned(host, base, response)
            error = self.error(response, "GET", f"{base}/v2/", host)
        assert error is not None
        raise error

    def _learned(self, host: str, base: str, response: Response) -> str:
        self.auth.set_scheme(host, urlsplit(base).scheme)
        if response.status_code == 401:
            self.auth.set_challenge(host, _pick(parse_challenges(_www(response))))
        with self._lock:
            self._bases[host] = base
        return base

    def _ping_at(self, base: str) -> Response:
        url = f"{base}/v2/"
        try:
            response = self.http.request("GET", url, verify=self.verify(url))
        except TlsFailed as exc:
            raise RegistryError(f"{base}: TLS failed: {exc} (use --ca-file PEM)") from None
        except DeadlineExceeded as exc:
            raise _Answered(Retryable(f"{base}: GET /v2/: {exc}")) from None
        except ConnectionFailed as exc:
            raise Retryable(f"{base}: cannot connect: {exc}") from None
        except HttpError as exc:
            raise _Answered(RegistryError(f"{base}: GET /v2/: {exc}")) from None
        if response.status_code in RETRY_STATUSES:
            raise self.error(response, "GET", url, urlsplit(base).netloc)
        return response

    def send(
        self,
        method: str,
        url: str,
        host: str,
        *,
        ok: Iterable[int],
        headers: Mapping[str, str] | None = None,
        body: Body = None,
        repository: str = "",
    ) -> Response:
        """One request; a 401 re-authenticates and resends once. ``body`` may be a factory."""
        for attempt in (1, 2):
            response = self._send_once(method, url, (host, repository), headers, body)
            if response.status_code != 401 or attempt == 2:
                break
            response.close()
            self.auth.unauthorized(host, repository, _pick(parse_challenges(_www(response))))
        if response.status_code in set(ok):
            return response
        raise self.error(response, method, url, host)

    def _send_once(
        self,
        method: str,
        url: str,
        scope_key: tuple[str, str],
        headers: Mapping[str, str] | None,
        body: Body,
    ) -> Response:
        host = scope_key[0]
        all_headers = dict(headers or {})
        if self._is_registry(host, url):
            authorization = self.auth.header(*scope_key)
            if authorization:
                all_headers["Authorization"] = authorization
        try:
            return self.http.request(
                method, url, headers=all_headers, body=body, verify=self.verify(url)
            )
        except TlsFailed as exc:
            raise RegistryError(f"{host}: TLS failed: {exc} (use --ca-file PEM)") from None
        except ConnectionFailed as exc:
            where = f"{method} {urlsplit(url).path}"
            raise Retryable(f"{host}: {where}: connection failed: {_short(exc)}") from None
        except HttpError as exc:
            where = f"{method} {urlsplit(url).path}"
            raise RegistryError(f"{host}: {where}: {exc}") from None

    def _is_registry(self, host: str, url: str) -> bool:
        """Whether ``url`` is on the registry's own scheme, host and port."""
        with self._lock:
            base = self._bases.get(host)
        return base is not None and origin(url) == origin(base)

    def error(self, response: Response, method: str, url: str, host: str) -> RegistryError:
        """The exception for a failed response: status, registry code, message."""
        code, message = _registry_error(response)
        status = response.status_code
        redactor = Redactor(self.auth.secrets)
        where = f"{host}: {method} {urlsplit(url).path}"
        text = redactor.redact(f"{where}: HTTP {status} {code or ''}: {message}".replace("  ", " "))
        response.close()
        if status in RETRY_STATUSES:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return Retryable(text, status=status, code=code, retry_after=retry_after)
        if status in (401, 403):
            code = code or ("UNAUTHORIZED" if status == 401 else "DENIED")  # HEAD has no body
            text = text.replace(f"HTTP {status} :", f"HTTP {status} {code}:")
            challenge = _pick(parse_challenges(_www(response)))
            if challenge is not None and challenge.get("error") == "insufficient_scope":
                scope = challenge.get("scope") or "this request"
                text = f"{where}: DENIED: the token does not grant {scope} (insufficient_scope)"
                code = "DENIED"
            elif status == 401 and (cred := self.auth.credential(host)) is not None:
                origin = f" from {cred.source}" if cred.source else ""
                text += f" (credentials of user {cred.username!r}{origin} rejected)"
            return AuthError(redactor.redact(text), status=status, code=code)
        return RegistryError(text, status=status, code=code)


class _Answered(Exception):
    """A ping failure from a server that spoke HTTP on this scheme: try no other."""

    def __init__(self, error: RegistryError) -> None:
        super().__init__(str(error))
        self.error = error


def _registry_error(response: Response) -> tuple[str | None, str]:
    """The first entry of the distribution error body ``{"errors": [...]}``."""
    try:
        errors = response.json().get("errors") or []
        first = errors[0]
        return str(first.get("code") or "") or None, str(first.get("message") or "")[:300]
    except (ValueError, AttributeError, IndexError, TypeError):
        return None, (response.reason or "").strip()


def _www(response: Response) -> str:
    return response.headers.get("WWW-Authenticate", "")


def _pick(challenges: list[Challenge]) -> Challenge | None:
    """Prefer Bearer (scoped, short-lived) over Basic when a registry offers both."""
    by_scheme = {c.scheme: c for c in challenges}
    return by_scheme.get("bearer") or by_scheme.get("basic")


def _short(exc: BaseException) -> str:
    """One line about a connection failure: the OS reason if there is one.

    urllib3 nests it three levels deep ("Max retries exceeded ... Caused by
    NewConnectionError(... [Errno 111] Connection refused)"); URLs' query
    strings (an upload's state token) never make it into the text.
    """
    text = str(exc)
    errno = _ERRNO.search(text)
    if errno:
        return errno.group(1).strip()
    text = _QUERY.sub("", text).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__
