"""Registry authentication: Basic, and Docker's Bearer token flow.

The registry says how to authenticate in its ``WWW-Authenticate`` challenge
(on ``GET /v2/`` or any 401). For Bearer, a token is fetched from the realm
for a set of scopes (``repository:org/app:pull,push``) and cached per scope
set until shortly before ``expires_in`` runs out. A 401 mid-push means the
token expired early or lacks a scope the request needs (a cross-repository
mount also needs ``pull`` on the source): the scopes of the new challenge are
merged into what we hold and a fresh token is fetched, once.

The realm is named by the registry, so it is not trusted blindly: a realm
on plain ``http://`` for a registry reached over https is refused (loopback
realms excepted, as for registries), and the first time credentials go to
a realm host it is logged, so an operator can see where they went.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from scratchd.errors import AuthError, RegistryError
from scratchd.models import Secret
from scratchd.registry.challenge import Challenge
from scratchd.registry.credentials import Credential, CredentialStore
from scratchd.registry.http import HttpClient, HttpError, Response
from scratchd.registry.reference import is_loopback

log = logging.getLogger(__name__)

DEFAULT_EXPIRES_IN = 60  # seconds, per the distribution token spec
_EARLY = 0.1  # renew when this fraction of the lifetime is left


TokenKey = tuple[str, str, frozenset[str]]  # host, credential identity, scopes


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float


class TokenCache:
    """Bearer tokens that outlive one push: one cache for every client of a daemon.

    A token is keyed by host, scopes *and* the credential it was fetched
    with (a digest of it, never the secret itself), so a push with other
    credentials, or after a rotated password, never gets a token it did
    not earn. Thread-safe; expired tokens are dropped as new ones come in.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[TokenKey, _Token] = {}
        self._realms: set[tuple[str, str]] = set()

    def first_use(self, registry: str, realm_host: str) -> bool:
        """Whether credentials for ``registry`` go to ``realm_host`` for the first time.

        Kept here because this cache outlives single pushes: the daemon logs
        each realm once, not once per push.
        """
        with self._lock:
            first = (registry, realm_host) not in self._realms
            self._realms.add((registry, realm_host))
            return first

    def get(self, key: TokenKey) -> str | None:
        with self._lock:
            token = self._tokens.get(key)
        return token.value if token is not None and token.expires_at > self._clock() else None

    def put(self, key: TokenKey, token: _Token) -> None:
        now = self._clock()
        with self._lock:
            self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now}
            self._tokens[key] = token

    def drop(self, key: TokenKey) -> None:
        with self._lock:
            self._tokens.pop(key, None)


class Authenticator:
    """Turns (host, scopes) into an ``Authorization`` header value.

    Thread-safe: parallel blob uploads share one instance. Holds the last
    challenge per host, the scopes wanted per pushed repository, and the
    token cache.
    """

    def __init__(
        self,
        credentials: CredentialStore,
        http: HttpClient,
        *,
        verify: Callable[[str], bool | str] = lambda realm: True,
        clock: Callable[[], float] = time.monotonic,
        tokens: TokenCache | None = None,
    ) -> None:
        self._credentials = credentials
        self._http = http
        self._verify = verify
        self._clock = clock
        self._lock = threading.Lock()
        self._fetching = threading.Lock()
        self._challenges: dict[str, Challenge | None] = {}
        self._scopes: dict[tuple[str, str], set[str]] = {}  # (host, repository) -> scopes
        self._tokens = tokens if tokens is not None else TokenCache(clock)
        self._creds: dict[str, Credential | None] = {}
        self._schemes: dict[str, str] = {}  # registry host -> "https" / "http"
        #: Every secret value used so far, for redacting error text.
        self.secrets: set[str | Secret] = set()

    def set_scheme(self, host: str, scheme: str) -> None:
        """The scheme the registry answered on; an https one gets only https realms."""
        with self._lock:
            self._schemes[host] = scheme

    def set_challenge(self, host: str, challenge: Challenge | None) -> None:
        with self._lock:
            self._challenges[host] = challenge

    def want(self, host: str, repository: str, scopes: Iterable[str]) -> None:
        """Declare scopes before requests need them (saves one 401 round trip)."""
        with self._lock:
            self._scopes.setdefault((host, repository), set()).update(scopes)

    def header(self, host: str, repository: str = "") -> str | None:
        """The header for the next request about ``repository`` (``None``: send none).

        Scopes are kept per repository being pushed, so a long-lived client
        never asks for a token covering every repository it ever touched.
        """
        with self._lock:
            challenge = self._challenges.get(host)
            scopes = frozenset(self._scopes.get((host, repository), ()))
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            return self._basic(host)
        if challenge.scheme == "bearer":
            return f"Bearer {self._token(host, challenge, scopes)}"
        raise AuthError(f"registry {host} asks for unsupported auth scheme {challenge.scheme!r}")

    def unauthorized(self, host: str, repository: str, challenge: Challenge | None) -> None:
        """After a 401: adopt the new challenge, merge its scope, drop stale tokens."""
        identity = self._identity(host)
        with self._lock:
            key = (host, repository)
            self._tokens.drop((host, identity, frozenset(self._scopes.get(key, ()))))
            if challenge is not None:
                self._challenges[host] = challenge
                self._scopes.setdefault(key, set()).update(challenge.get("scope").split())

    def credential(self, host: str) -> Credential | None:
        with self._lock:
            if host not in self._creds:
                found = self._creds[host] = self._credentials.get(host)
                if found is not None:
                    self.secrets.update(found.secrets())
            return self._creds[host]

    def _identity(self, host: str) -> str:
        """A digest naming the credential for ``host`` (tokens are cached per credential)."""
        cred = self.credential(host)
        if cred is None:
            return ""
        parts = (
            cred.username,
            *(s.reveal() if s else "" for s in (cred.password, cred.identity_token)),
        )
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _basic(self, host: str) -> str:
        cred = self.credential(host)
        if cred is None or cred.password is None:
            raise AuthError(
                f"registry {host} requires a username and password; none configured "
                "(--username/--password-stdin, docker login, or [registry] in the config)",
                status=401,
                code="UNAUTHORIZED",
            )
        return basic_header(cred)

    def _token(self, host: str, challenge: Challenge, scopes: frozenset[str]) -> str:
        key = (host, self._identity(host), scopes)
        with self._fetching:  # parallel uploads wait for one token instead of each fetching
            cached = self._tokens.get(key)
            if cached is not None:
                self.secrets.add(cached)  # fetched by another push: redact it here too
                return cached
            token = self._fetch_token(host, challenge, scopes)
            self._tokens.put(key, token)
            return token.value

    def _fetch_token(self, host: str, challenge: Challenge, scopes: frozenset[str]) -> _Token:
        realm = challenge.get("realm")
        if not realm.startswith(("https://", "http://")):
            raise AuthError(f"registry {host}: Bearer challenge has no usable realm")
        self._check_realm(host, realm)
        cred = self.credential(host)
        params = [("scope", s) for s in sorted(scopes)]
        if challenge.get("service"):
            params.append(("service", challenge.get("service")))
        started = self._clock()
        response = self._request_token(realm, cred, params)
        if response.status_code in (401, 403):
            who = f"user {cred.username!r} ({cred.source})" if cred else "anonymous access"
            raise AuthError(
                f"token server for {host} refused {who}: HTTP {response.status_code}",
                status=response.status_code,
                code="UNAUTHORIZED" if response.status_code == 401 else "DENIED",
            )
        if response.status_code != 200:
            raise RegistryError(
                f"token server for {host} answered HTTP {response.status_code}",
                status=response.status_code,
            )
        return self._parse_token(host, response, started)

    def _check_realm(self, host: str, realm: str) -> None:
        """Refuse a plain-http realm for an https registry; log a realm's first use."""
        realm_host = urlsplit(realm).netloc
        with self._lock:
            secure = self._schemes.get(host, "https") == "https"
        if secure and realm.startswith("http://") and not is_loopback(realm_host):
            raise AuthError(
                f"registry {host}: refusing token realm on plain http://{realm_host} for an "
                "https registry (credentials and tokens would travel in clear)",
                code="INSECURE_REALM",
            )
        if self.credential(host) is not None and self._tokens.first_use(host, realm_host):
            log.info("registry %s: sending its credentials to token server %s", host, realm_host)

    def _request_token(
        self, realm: str, cred: Credential | None, params: list[tuple[str, str]]
    ) -> Response:
        verify = self._verify(realm)
        try:
            if cred is not None and cred.identity_token is not None:
                form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", cred.identity_token.reveal()),
                    ("client_id", "scratchd"),
                    *[(k, v) for k, v in params if k == "service"],
                    ("scope", " ".join(v for k, v in params if k == "scope")),
                ]
                headers = {"Content-Type": "application/x-www-form-urlencoded"}
                body = urlencode(form).encode()
                return self._http.request("POST", realm, headers=headers, body=body, verify=verify)
            headers = {}
            if cred is not None and cred.password is not None:
                headers["Authorization"] = basic_header(cred)
            separator = "&" if "?" in realm else "?"
            url = f"{realm}{separator}{urlencode(params)}"
            return self._http.request("GET", url, headers=headers, verify=verify)
        except HttpError as exc:
            raise RegistryError(f"token server {realm.split('?')[0]}: {exc}") from None

    def _parse_token(self, host: str, response: Response, started: float) -> _Token:
        try:
            body = response.json()
            value = body.get("token") or body.get("access_token")
            lifetime = float(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0.0
        if not value:
            raise RegistryError(f"token server for {host} returned no token")
        self.secrets.add(value)
        return _Token(value, started + lifetime * (1 - _EARLY))


def basic_header(cred: Credential) -> str:
    """``Authorization: Basic`` for a username + password credential."""
    raw = f"{cred.username}:{cred.password.reveal() if cred.password else ''}".encode()
    return "Basic " + base64.b64encode(raw).decode()
