"""Loopback servers the registry tests put around the real docker-registry.

- :func:`make_ca`: a CA and a server certificate for 127.0.0.1 (TLS tests).
- :class:`TokenServer`: a Docker token server as Quay runs one: checks Basic
  credentials, grants per-user actions, signs JWTs with a test key that the
  registry trusts through ``rootcertbundle`` (the JWT header carries the
  certificate as ``x5c``).
- :class:`FaultProxy`: forwards to the registry and injects failures on
  chosen requests (status codes, Retry-After, connection resets mid-body,
  delays), and counts requests and uploaded blob bytes.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import http.client
import ipaddress
import json
import re
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# -- certificates -----------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject, issuer, public_key, signer, *, ca: bool, ip: str | None = None):
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ip:
        san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))])
        builder = builder.add_extension(san, critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem_key(key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # PEM of the CA clients must trust
    cert: Path  # server certificate for 127.0.0.1
    key: Path


def make_ca(directory: Path) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 signed by it."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("scratchd test CA", "scratchd test CA", ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(
        "127.0.0.1", "scratchd test CA", key.public_key(), ca_key, ca=False, ip="127.0.0.1"
    )
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(_pem_key(key))
    return files


def tls_yaml(files: TlsFiles) -> str:
    return f"  tls:\n    certificate: {files.cert}\n    key: {files.key}\n"


# -- a loopback HTTP server in a thread -------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


@contextlib.contextmanager
def serve(handler_class, owner) -> contextlib.AbstractContextManager[str]:
    """Run ``handler_class`` on a free loopback port; yields ``127.0.0.1:PORT``."""
    handler = type("Handler", (handler_class,), {"owner": owner})
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # tests read counters, not access logs
        pass

    def reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


# -- token server -----------------------------------------------------------


class TokenServer:
    """Issues registry JWTs; ``users`` maps name → (password, granted actions)."""

    issuer = "scratchd-test-issuer"
    service = "scratchd-test-registry"

    def __init__(self, directory: Path, users: dict[str, tuple[str, tuple[str, ...]]]):
        self.users = users
        self.key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert("token signer", "token signer", self.key.public_key(), self.key, ca=True)
        self.cert_der = cert.public_bytes(serialization.Encoding.DER)
        self.bundle = directory / "token-ca.pem"
        directory.mkdir(parents=True, exist_ok=True)
        self.bundle.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []  # {"user", "scopes"} per token request
        self.refresh_tokens: dict[str, str] = {}  # identity token -> user
        self.lifetime = 300  # JWT exp, seconds from now
        self.expires_in = 300  # what the response tells the client
        self.host = ""
        self._lock = threading.Lock()

    @property
    def realm(self) -> str:
        return f"http://{self.host}/token"

    def auth_yaml(self) -> str:
        return (
            "auth:\n  token:\n"
            f"    realm: {self.realm}\n    service: {self.service}\n"
            f"    issuer: {self.issuer}\n    rootcertbundle: {self.bundle}\n"
        )

    @contextlib.contextmanager
    def running(self):
        with serve(_TokenHandler, self) as host:
            self.host = host
            yield self

    def issue(self, user: str, scopes: list[str]) -> dict:
        granted = self.users.get(user, ("", ()))[1] if user else ()
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = [a for a in actions.split(",") if a in granted]
            access.append({"type": kind, "name": name, "actions": allowed})
        now = int(time.time())
        claims = {
            "iss": self.issuer, "sub": user, "aud": self.service, "iat": now, "nbf": now - 5,
            "exp": now + self.lifetime, "jti": uuid.uuid4().hex, "access": access,
        }  # fmt: skip
        x5c = [base64.b64encode(self.cert_der).decode()]
        token = jwt.encode(claims, self.key, algorithm="ES256", headers={"x5c": x5c})
        with self._lock:
            self.requests.append({"user": user, "scopes": sorted(scopes)})
        return {"token": token, "expires_in": self.expires_in}


class _TokenHandler(_Quiet):
    owner: TokenServer

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        user = self._user()
        if user is None:
            self.reply(401, b'{"details":"bad credentials"}', {"Content-Type": "application/json"})
            return
        body = self.owner.issue(user, query.get("scope", []))
        self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def do_POST(self) -> None:
        """OAuth2 refresh-token grant, as docker uses with an ``identitytoken``."""
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode())
        user = self.owner.refresh_tokens.get(form.get("refresh_token", [""])[0])
        if form.get("grant_type") != ["refresh_token"] or user is None:
            self.reply(401, b'{"error":"invalid_grant"}', {"Content-Type": "application/json"})
            return
        body = self.owner.issue(user, " ".join(form.get("scope", [])).split())
        body["access_token"] = body.pop("token")  # the OAuth2 spelling
        self.reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _user(self) -> str | None:
        header = self.headers.get("Authorization", "")
        if not header:
            return ""  # anonymous: a token with no actions
        try:
            user, _, password = base64.b64decode(header.split(" ", 1)[1]).decode().partition(":")
        except (ValueError, IndexError):
            return None
        known = self.owner.users.get(user)
        return user if known and known[0] == password else None


# -- fault-injecting proxy ---------------------------------------------------


@dataclass
class Fault:
    """Inject ``action`` into the next ``times`` requests matching method + path regex.

    ``action``: "status" (answer ``status`` with ``headers``), "reset" (read part
    of the body, then reset the connection), "delay" (wait ``delay`` seconds,
    then forward), "rewrite" (forward, then override response ``headers``).
    """

    method: str
    path: str
    action: str = "status"
    status: int = 500
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1
    hits: int = 0


@dataclass
class Seen:
    method: str
    path: str
    body: int  # request body bytes received
    status: int  # what the client got (0: connection reset)


class FaultProxy:
    """A loopback HTTP proxy in front of ``upstream`` (``127.0.0.1:PORT``)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.host = ""
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def running(self):
        with serve(_ProxyHandler, self) as host:
            self.host = host
            yield self

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self.faults.extend(faults)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                active = fault.hits < fault.times and fault.method == method
                if active and re.search(fault.path, path):
                    fault.hits += 1
                    return fault
        return None

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.seen.append(seen)

    def blob_bytes(self) -> int:
        """Request body bytes sent to blob upload URLs (PATCH/PUT/POST)."""
        with self._lock:
            return sum(s.body for s in self.seen if "/blobs/uploads/" in s.path)

    def count(self, method: str, pattern: str = "") -> int:
        with self._lock:
            return sum(1 for s in self.seen if s.method == method and re.search(pattern, s.path))

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()


_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


class _ProxyHandler(_Quiet):
    owner: FaultProxy

    def _handle(self) -> None:
        fault = self.owner.take_fault(self.command, self.path)
        if fault is not None and fault.action == "reset":
            self._reset_mid_body()
            return
        body = self._read_body()
        if fault is not None and fault.action == "status":
            self.owner.record(Seen(self.command, self.path, len(body), fault.status))
            error = {"errors": [{"code": "UNAVAILABLE", "message": "injected fault"}]}
            self.reply(fault.status, json.dumps(error).encode(), fault.headers)
            return
        if fault is not None and fault.action == "delay":
            time.sleep(fault.delay)
        status, headers, data = self._forward(body)
        if fault is not None and fault.action == "rewrite":  # a registry that lies in headers
            headers = {**headers, **fault.headers}
        self.owner.record(Seen(self.command, self.path, len(body), status))
        self.reply(status, data, headers)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reset_mid_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        got = self.rfile.read(min(length // 2, 64 << 10)) if length else b""
        self.owner.record(Seen(self.command, self.path, len(got), 0))
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _forward(self, body: bytes) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self.owner.upstream, timeout=60)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            if body or self.command in ("PUT", "POST", "PATCH"):
                headers["Content-Length"] = str(len(body))
            conn.request(self.command, self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            data = response.read()
            out = {k: v for k, v in response.getheaders() if k.lower() not in _HOP}
            if self.command == "HEAD":
                length = response.getheader("Content-Length")
                return response.status, out, b"" if length is None else _HeadBody(int(length))
            return response.status, out, data
        finally:
            conn.close()

    def reply(self, status: int, body=b"", headers: dict | None = None) -> None:
        if isinstance(body, _HeadBody):  # HEAD keeps the upstream's Content-Length
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(body.length))
            self.end_headers()
            return
        super().reply(status, body, headers)


@dataclass(frozen=True)
class _HeadBody:
    length: int
