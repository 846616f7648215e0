"""Helpers for the web tests: a real ``scratchd web`` process, an in-process server, SSE."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from scratchd.models import Commit, Trigger
from scratchd.store import BuildLog, StateDir, Store, compress_log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, state_dir: Path, repos=("app",)) -> Path:
    lines = ["[daemon]", f'state_dir = "{state_dir}"', 'executor = "host"', ""]
    for name in repos:
        lines += ["[[repo]]", f'name = "{name}"', 'path = "/tmp"', 'pipelines = ["build"]', ""]
    path.write_text("\n".join(lines))
    return path


class WebProcess:
    """``python -m scratchd web`` exactly as the unit starts it; restartable on one port."""

    def __init__(self, config: Path, port: int | None = None, extra: tuple[str, ...] = ()):
        self.config, self.port, self.extra = config, port or free_port(), extra
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> WebProcess:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scratchd",
                "web",
                "--config",
                str(self.config),
                "--bind",
                f"127.0.0.1:{self.port}",
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
            text=True,
        )
        line = self.proc.stdout.readline().strip()
        assert line == self.url, f"scratchd web said {line!r}: {self.proc.stdout.read()}"
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> str:
        """SIGTERM; returns what it printed (tracebacks would show here)."""
        if self.proc is None:
            return ""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.stdout.read()


class InProcessWeb:
    """The app in a thread of this process, for settings a command line does not offer."""

    def __init__(self, settings) -> None:
        from scratchd.web import serve

        self._urls: list[str] = []
        ready = threading.Event()
        self.loop = asyncio.new_event_loop()

        def on_ready(url: str) -> None:
            self._urls.append(url)
            ready.set()

        self._task = None

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self._task = self.loop.create_task(serve(settings, "127.0.0.1:0", ready=on_ready))
            with contextlib.suppress(asyncio.CancelledError):
                self.loop.run_until_complete(self._task)

        self.thread = threading.Thread(target=main, daemon=True)
        self.thread.start()
        assert ready.wait(10), "in-process server did not start"
        self.url = self._urls[0]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(10)


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


def get(url: str, path: str, headers: dict | None = None) -> Response:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    try:
        conn.request("GET", path, headers=headers or {})
        r = conn.getresponse()
        return Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
    finally:
        conn.close()


@dataclass
class Event:
    id: str | None = None
    event: str = "message"
    data: list[str] = field(default_factory=list)


class SSE:
    """A raw SSE client: keeps comments too, so keep-alives can be seen."""

    def __init__(self, url: str, path: str, headers: dict | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        self.conn.request("GET", path, headers={"Accept": "text/event-stream", **(headers or {})})
        self.response = self.conn.getresponse()
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self.comments: list[str] = []
        self.raw: list[str] = []
        self.retry: int | None = None

    def next(self, timeout: float = 30.0) -> Event | None:
        """The next event; ``None`` when the server closed the stream.

        Keep-alive comments do not count: with no event within ``timeout`` it fails.
        """
        ev = Event()
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no event within {timeout} s; saw {self.raw[-5:]}")
            line = self.response.readline()
            if not line:
                return None
            text = line.decode().rstrip("\n")
            self.raw.append(text)
            if text == "":
                if ev.data or ev.id is not None:
                    return ev
                continue
            name, _, value = text.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                self.comments.append(value)
            elif name == "id":
                ev.id = value
            elif name == "event":
                ev.event = value
            elif name == "data":
                ev.data.append(value)
            elif name == "retry":
                self.retry = int(value)

    def close(self) -> None:
        self.conn.close()


def seed(state_dir: Path, repo: str = "app", lines: int = 30) -> list[int]:
    """Builds with logs: passed, failed, passed; a running one whose log is still plain."""
    state = StateDir(state_dir)
    store = Store(state.db)
    ids = []
    for i, finish in enumerate(("passed", "failed", "passed", None)):
        build = store.enqueue([Commit(repo, "refs/heads/main", f"{i + 1:040x}")], Trigger.PUSH)[0]
        store.claim_next(max_running=4)
        store.set_commit_facts(build.id, subject=f"commit {i}", author="Ada <ada@example.org>")
        with BuildLog(state.log_path(repo, build.id)) as log:
            for n in range(1, lines + 1):
                step = "compile" if n <= lines // 2 else "test"
                log.line(f"line {n}", pipeline="build", step=step)
        if finish is not None:
            compress_log(state.log_path(repo, build.id))
            if finish == "passed":
                store.mark_passed(build.id, [f"registry.test/app@sha256:{i:064x}"])
            else:
                store.mark_failed(build.id, "step test failed", "test")
        ids.append(build.id)
    store.close()
    time.sleep(0.01)
    return ids
