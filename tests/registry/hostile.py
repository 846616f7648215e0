"""A small registry that misbehaves on purpose, for the hardening tests.

It speaks just enough of the distribution API for a push (ping, blob HEAD,
upload POST/PUT, manifest PUT, a token endpoint) and can be told to:

- send uploads elsewhere (``upload_location``: another host, port or scheme),
  or redirect blob HEADs (``head_redirect``);
- ask for Bearer tokens from any realm (``realm``);
- answer the ping with a body that never ends, one that announces 2^40
  bytes, or one that trickles a byte at a time (``ping_body``).

Every request is recorded with its ``Authorization`` header, so a second
instance on another address or port serves as the witness of where
credentials went. Plain HTTP or TLS (the suite's test CA).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer

from tests.registry.servers import TlsFiles, _Quiet

TOKEN = "hostile-test-token-value"


@dataclass
class Seen:
    method: str
    path: str
    authorization: str


@dataclass
class Hostile:
    """Behaviour knobs (set before or while running) and what was seen."""

    bind: str = "127.0.0.1"
    tls: TlsFiles | None = None
    basic: tuple[str, str] | None = None  # (user, password) the registry demands
    realm: str = ""  # with basic=None and realm set: Bearer auth with this realm
    upload_location: str = ""  # absolute Location for upload POSTs ("" = our own)
    ping_body: str = ""  # "", "endless", "huge", "trickle", "slow-headers"
    head_redirect: str = ""  # absolute Location for blob HEADs ("" = answer 404)
    trickle_every: float = 0.5  # seconds between bytes of a trickled body
    seen: list[Seen] = field(default_factory=list)
    host: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}"

    def authorizations(self) -> list[str]:
        with self.lock:
            return [s.authorization for s in self.seen if s.authorization]

    def requests(self, method: str = "", path: str = "") -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.method.startswith(method) and path in s.path]

    @contextlib.contextmanager
    def running(self):
        handler = type("Handler", (_Handler,), {"owner": self})
        server = _Server((self.bind, 0), handler)
        if self.tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(self.tls.cert, self.tls.key)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.host = f"{self.bind}:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(10)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        pass  # clients that hang up on an endless body are the point of the exercise


class _Handler(_Quiet):
    protocol_version = "HTTP/1.1"
    owner: Hostile

    def _record(self) -> None:
        with self.owner.lock:
            auth = self.headers.get("Authorization", "")
            self.owner.seen.append(Seen(self.command, self.path, auth))

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if self.owner.basic is not None:
            user, password = self.owner.basic
            return header == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if self.owner.realm:
            return header == f"Bearer {TOKEN}"
        return True

    def _challenge(self) -> None:
        if self.owner.basic is not None:
            www = 'Basic realm="hostile"'
        else:
            www = f'Bearer realm="{self.owner.realm}",service="hostile"'
        self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": www})

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        self._record()
        if self.path.startswith("/token"):
            self.reply(200, f'{{"token":"{TOKEN}","expires_in":300}}'.encode())
            return
        if not self._authorized():
            self._challenge()
            return
        if self.path == "/v2/" and self.owner.ping_body:
            self._misbehave(self.owner.ping_body)
            return
        self.reply(200, b"{}")

    def do_HEAD(self) -> None:
        self._record()
        if not self._authorized():
            self._challenge()
            return
        if self.owner.head_redirect:
            self.reply(307, headers={"Location": self.owner.head_redirect})
            return
        self.reply(404)

    def do_POST(self) -> None:
        self._record()
        self._body()
        if not self._authorized():
            self._challenge()
            return
        location = self.owner.upload_location or f"/upload/{uuid.uuid4().hex}"
        self.reply(202, headers={"Location": location})

    def do_PUT(self) -> None:
        self._record()
        body = self._body()
        if not self._authorized():
            self._challenge()
            return
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.reply(201, headers={"Docker-Content-Digest": digest})

    def _misbehave(self, how: str) -> None:
        if how == "slow-headers":  # a header line that never ends, one byte at a time
            self._trickle(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 100_000)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if how == "endless":
            self.send_header("Connection", "close")  # no length: the body ends at EOF
        elif how == "huge":
            self.send_header("Content-Length", str(1 << 40))
        elif how == "trickle":
            self.send_header("Content-Length", "1000")
        self.end_headers()
        block = b"x" * (64 << 10) if how != "trickle" else b"x"
        try:
            for _ in range(1 << 20):
                self.wfile.write(block)
                self.wfile.flush()
                if how == "trickle":
                    time.sleep(self.owner.trickle_every)
        except (OSError, ssl.SSLError):
            pass
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def _trickle(self, data: bytes) -> None:
        with contextlib.suppress(OSError, ssl.SSLError):
            for byte in data:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(self.owner.trickle_every)
        self.close_connection = True
