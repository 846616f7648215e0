"""One ssh tunnel per ``ssh://`` engine: a local unix socket forwarded to the engine's socket.

The docker SDK's own ssh transport opens an ssh connection per API call
(one handshake for every exec inspect of a running step); this keeps one
``ssh -N -L local.sock:/var/run/docker.sock`` process per engine and points a
plain unix-socket client at it. The process is started on first use and
again whenever it has died (a host that rebooted), so the engine's health
probe is also the tunnel's.

Authentication is ssh's: the daemon user's keys, agent and known_hosts
(``StrictHostKeyChecking=yes``, ``BatchMode=yes``: never a prompt), or the
``identity``/``known_hosts`` files given.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from scratchd.errors import BackendError

DEFAULT_SOCKET = "/var/run/docker.sock"


class SshTunnel:
    """``ensure()`` → ``unix://`` URL of a live forward to the engine behind ``url``."""

    def __init__(
        self,
        url: str,
        socket_dir: Path,
        *,
        identity: Path | None = None,
        known_hosts: Path | None = None,
        start_timeout: float = 15.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname:
            raise BackendError(f"not an ssh:// engine url: {url!r}")
        self._target = f"{parts.username}@{parts.hostname}" if parts.username else parts.hostname
        self._port = parts.port or 22
        self._remote = parts.path or DEFAULT_SOCKET
        self._local = socket_dir / f"{parts.hostname}-{self._port}.sock"
        self._identity, self._known_hosts = identity, known_hosts
        self._timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def local_url(self) -> str:
        return f"unix://{self._local}"

    def ensure(self) -> str:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
        return self.local_url

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.terminate()
                self._proc.wait(10)
            self._proc = None
            self._local.unlink(missing_ok=True)

    def _start(self) -> None:
        self._local.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._local.unlink(missing_ok=True)
        options = ["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes"]
        options += ["-o", "ServerAliveInterval=10", "-o", "StrictHostKeyChecking=yes"]
        options += ["-o", "StreamLocalBindUnlink=yes", "-p", str(self._port)]
        if self._identity is not None:
            options += ["-i", str(self._identity), "-o", "IdentitiesOnly=yes"]
        if self._known_hosts is not None:
            options += ["-o", f"UserKnownHostsFile={self._known_hosts}"]
        forward = f"{self._local}:{self._remote}"
        self._proc = subprocess.Popen(
            ["ssh", "-N", *options, "-L", forward, self._target],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + self._timeout
        while not self._local.exists():
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self._fail()
            time.sleep(0.05)
        os.chmod(self._local, 0o600)

    def _fail(self) -> None:
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.kill()
        _, err = self._proc.communicate(timeout=5)
        self._proc = None
        reason = err.decode(errors="replace").strip().splitlines()[-1:] or ["timed out"]
        raise BackendError(f"ssh tunnel to {self._target} failed: {reason[0]}")
