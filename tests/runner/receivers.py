"""A real HTTP server on loopback that records every request and answers as told.

Used by the tests of the built-in steps that talk HTTP (Slack webhooks, the
GitHub API, kubectl's API server): the test checks the exact request.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Receiver:
    """``answers[(method, path-without-query)] = (status, json)``; the default is 200 {}."""

    server: ThreadingHTTPServer
    requests: list[Request] = field(default_factory=list)
    answers: dict[tuple[str, str], tuple[int, object]] = field(default_factory=dict)

    tls: bool = False

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"


def start_receiver(tls_dir: Path | None = None) -> Receiver:
    """A receiver on 127.0.0.1; with ``tls_dir``, HTTPS with a fresh self-signed cert
    made there (kubectl sends a bearer token only over TLS)."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            receiver.requests.append(Request(self.command, self.path, headers, body))
            key = (self.command, self.path.split("?", 1)[0])
            status, payload = receiver.answers.get(key, (200, {}))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls_dir is not None:
        server.socket = _tls_context(tls_dir).wrap_socket(server.socket, server_side=True)
    receiver = Receiver(server, tls=tls_dir is not None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def _tls_context(directory: Path) -> ssl.SSLContext:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context
