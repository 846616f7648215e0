"""A real ``scratchd run`` process for tests: config file, start, signals, state queries.

The daemon runs as ``python -m scratchd run --config FILE`` in its own
session, exactly as systemd starts it, and tests judge it only through what
it leaves behind: the state database, log files, images and its exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scratchd.store import StateDir, Store

#: A build pipeline that only echoes: builds that cost a few milliseconds.
QUICK_YML = """\
build:
  steps:
    - script:
        name: compile
        code: |
          echo "building $WERCKER_GIT_COMMIT on $WERCKER_GIT_BRANCH"
          cat counter.txt
"""


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_config(
    daemon: dict, repos: list[dict], registries: dict | None = None, engines: list | None = None
) -> str:
    lines = ["[daemon]"] + [f"{k} = {toml_value(v)}" for k, v in daemon.items()]
    for engine in engines or ():
        lines.append("\n[[engine]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in engine.items()]
    for host, table in (registries or {}).items():
        lines.append(f'\n[registry."{host}"]')
        lines += [f"{k} = {toml_value(v)}" for k, v in table.items()]
    for repo in repos:
        lines.append("\n[[repo]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in repo.items()]
    return "\n".join(lines) + "\n"


class Daemon:
    """One daemon under test; ``repos`` are ``[[repo]]`` tables as dicts."""

    def __init__(
        self,
        root: Path,
        repos: list[dict],
        *,
        registries: dict | None = None,
        engines: list[dict] | None = None,
        **daemon: object,
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.config = root / "scratchd.toml"
        self.state = StateDir(root / "state")
        self.daemon = {
            "state_dir": str(self.state.root),
            "executor": "host",
            "poll_interval": "30s",
            "shutdown_grace": "10s",
            "max_concurrent_builds": 2,
            "retry_delay": "1s",
            **daemon,
        }
        self.registries = registries
        self.engines = engines  # [[engine]] tables
        self.output = root / "daemon.log"
        self.proc: subprocess.Popen | None = None
        self.start_args: list[str] = []  # extra ``scratchd run`` options
        self.global_args: list[str] = []  # options before ``run`` (``-vv``)
        self.env: dict[str, str] = {}  # extra environment (NOTIFY_SOCKET ...)
        self.write_config(repos)

    def write_config(self, repos: list[dict], **daemon: object) -> None:
        self.daemon.update(daemon)
        self.repos = repos
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(render_config(self.daemon, repos, self.registries, self.engines))
        tmp.replace(self.config)

    # -- process -------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> Daemon:
        self.root.mkdir(parents=True, exist_ok=True)
        out = open(self.output, "ab")  # noqa: SIM115 - the child keeps it
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("NOTIFY_SOCKET", None)
        env.update(self.env)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scratchd",
                *self.global_args,
                "run",
                "--config",
                str(self.config),
                *self.start_args,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        out.close()
        pid = self.proc.pid
        self.wait(lambda: (i := self.store().daemon_info()) is not None and i.pid == pid, timeout)
        return self

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def close(self) -> None:
        """Test teardown: never leave a daemon (or its build steps) behind."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    # -- state ------------------------------------------------------------------

    def store(self) -> Store:
        if not hasattr(self, "_store"):
            deadline = time.monotonic() + 20
            while not self.state.db.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self._store = Store(self.state.db, create=False)
        return self._store

    def builds(self, **filters) -> list:
        """Oldest first (the store lists newest first)."""
        return list(reversed(self.store().list_builds(**filters)))

    def wait(self, predicate: Callable[[], object], timeout: float = 30.0, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if predicate():
                    return
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited ({self.proc.returncode}):\n{self.log()}")
            time.sleep(0.05)
        builds = "\n".join(
            f"  {b.id} {b.repo} {b.ref} {b.short_sha} {b.status} {b.message or ''}"
            for b in self.builds()
        )
        raise AssertionError(
            f"timed out waiting for {what or predicate}\nbuilds:\n{builds}\n{self.log()[-4000:]}"
        )

    def wait_status(self, sha: str, status: str, timeout: float = 30.0):
        """Wait until a build of ``sha`` has ``status``; returns it."""
        found = []

        def done():
            found[:] = [b for b in self.builds() if b.sha == sha and b.status == status]
            return found

        self.wait(done, timeout, f"a {status} build of {sha[:8]}")
        return found[0]


def repo_table(name: str, path, **kw) -> dict:
    """A ``[[repo]]`` table building only the ``build`` pipeline of ``main``."""
    return {"name": name, "path": str(path), "branches": ["main"], "pipelines": ["build"], **kw}


@pytest.fixture(name="make_daemon")
def make_daemon_fixture(tmp_path):
    """``make_daemon(repos, **daemon_keys)``; every daemon is stopped after the test."""
    daemons = []

    def make(repos, **kw) -> Daemon:
        d = Daemon(tmp_path / f"d{len(daemons)}", repos, **kw)
        daemons.append(d)
        return d

    yield make
    for d in daemons:
        d.close()
