"""A real HTTP server that records every request and answers as told.

Used by the tests of the built-in steps that talk HTTP (Slack webhooks, the
GitHub API, kubectl's API server): the test checks the exact request. On the
host executor it listens on loopback in the test's process. On the docker
executor the same file runs as a pipeline's ``services:`` container in the
Debian box (stdlib only, see :func:`service`): it is then out of the test's
reach, so it also answers ``GET /__recorded__`` with what it got, which a
later step of the pipeline prints for the test to read back.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
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

    def to_json(self) -> dict[str, object]:
        """A JSON form whose headers and body are base64: a pipeline's step prints it,
        and the build's masker would hide the very tokens the test checks."""
        headers = base64.b64encode(json.dumps(self.headers).encode()).decode()
        body = base64.b64encode(self.body).decode()
        return {"method": self.method, "path": self.path, "headers": headers, "body": body}

    @classmethod
    def from_json(cls, doc: dict) -> Request:
        headers = json.loads(base64.b64decode(doc["headers"]))
        return cls(doc["method"], doc["path"], headers, base64.b64decode(doc["body"]))


RECORDED = "/__recorded__"


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


def start_receiver(tls_dir: Path | None = None, host: str = "127.0.0.1", port: int = 0) -> Receiver:
    """A receiver on ``host`` (loopback unless it runs in a box); with ``tls_dir``,
    HTTPS with a fresh self-signed cert made there (kubectl sends a bearer
    token only over TLS)."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            if (self.command, self.path) == ("GET", RECORDED):
                status, payload = 200, [r.to_json() for r in receiver.requests]
            else:
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

    server = ThreadingHTTPServer((host, port), Handler)
    if tls_dir is not None:
        server.socket = _tls_context(tls_dir).wrap_socket(server.socket, server_side=True)
    receiver = Receiver(server, tls=tls_dir is not None)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receiver


def _tls_context(directory: Path) -> ssl.SSLContext:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=scratchd-test-receiver", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


# -- the receiver as a service container of a pipeline -------------------------

SERVICE_CMD = (
    "python3 -c 'import base64, os; "
    'exec(compile(base64.b64decode(os.environ["RECEIVER_PY"]), "receivers.py", "exec"))\''
)


def service(
    name: str, image: str, port: int, answers: dict | None = None, tls: bool = False
) -> str:
    """A ``services:`` entry (YAML text) running this file in ``image`` as ``name``.

    The file travels in the service's environment (a service box has no
    mounts); ``answers`` are ``{(method, path): (status, json)}``.
    """
    table = [[m, p, status, doc] for (m, p), (status, doc) in (answers or {}).items()]
    env = {
        "RECEIVER_PY": base64.b64encode(Path(__file__).read_bytes()).decode(),
        "RECEIVER_PORT": str(port),
        "RECEIVER_ANSWERS": base64.b64encode(json.dumps(table).encode()).decode(),
        "RECEIVER_TLS": "1" if tls else "",
    }
    lines = [f"  - name: {name}", f"    id: {image}", f"    cmd: {SERVICE_CMD}", "    ports:"]
    lines += [f'      - "{port}"', "    env:"]
    lines += [f'      {key}: "{value}"' for key, value in env.items()]
    return "\n".join(lines) + "\n"


def fetch_step(name: str, url: str) -> str:
    """A script step (YAML text, a list item at step depth) printing what ``url`` recorded."""
    code = (
        "import ssl, sys, urllib.request; "
        "print(urllib.request.urlopen(sys.argv[1], timeout=30, "
        "context=ssl._create_unverified_context()).read().decode())"
    )
    return f"""\
    - script:
        name: {name}
        code: |
          python3 -c "{code}" {url.rstrip("/")}{RECORDED}
"""


def recorded(lines: list[str]) -> list[Request]:
    """The requests a receiver service reported, from the output of :func:`fetch_step`."""
    return [Request.from_json(doc) for doc in json.loads("\n".join(lines))]


def _serve_in_box() -> None:
    table = json.loads(base64.b64decode(os.environ.get("RECEIVER_ANSWERS", "") or b"W10="))
    tls_dir = Path(tempfile.mkdtemp()) if os.environ.get("RECEIVER_TLS") else None
    receiver = start_receiver(tls_dir, host="0.0.0.0", port=int(os.environ["RECEIVER_PORT"]))  # noqa: S104
    receiver.answers.update({(m, p): (status, doc) for m, p, status, doc in table})
    print(f"receiving on {receiver.url}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    _serve_in_box()
