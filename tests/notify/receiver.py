"""A real HTTP receiver on loopback that records what it was sent.

``script`` decides each answer in turn: an int is a status code, ``"drop"``
closes the connection without answering (a lost response); when it runs out
every request gets 204. ``stop()``/``start()`` keep the port, so a test can
take the receiver down and bring it back.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, script=(), port: int = 0) -> None:
        self.script = list(script)
        self.requests: list[dict] = []  # every request that reached a handler
        self.accepted: list[dict] = []  # the ones answered 2xx
        self._lock = threading.Lock()
        self.port = port
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                seen = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                    "json": json.loads(body) if body else None,
                }
                with receiver._lock:
                    receiver.requests.append(seen)
                    answer = receiver.script.pop(0) if receiver.script else 204
                if answer == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if 200 <= answer < 300:
                    with receiver._lock:
                        receiver.accepted.append(seen)
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.accepted) >= count:
                    return list(self.accepted)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.accepted)} of {count} deliveries arrived")
