"""sd_notify from the real daemon: READY after recovery, STATUS, RELOADING, STOPPING.

The test plays systemd's part: it binds the ``$NOTIFY_SOCKET`` datagram
socket and reads what the daemon sends, as ``Type=notify`` would.
"""

from __future__ import annotations

import signal
import socket
import time

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401


class NotifySocket:
    def __init__(self, path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def wait_for(self, assignment: str, timeout: float = 20.0) -> str:
        """The first message (from now) holding ``assignment``, e.g. ``READY=1``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                break
            self.messages.append(message)
            if assignment in message.splitlines():
                return message
        raise AssertionError(f"no {assignment} in {self.messages}")


def test_ready_status_reload_and_stopping_reach_the_notify_socket(tmp_path, make_daemon):
    work = WorkRepo(tmp_path / "w")
    work.commit("w: wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    notify = NotifySocket(tmp_path / "notify.sock")
    d = make_daemon([repo_table("w", work.path)])
    d.env = {"NOTIFY_SOCKET": notify.path}
    d.start()
    ready = notify.wait_for("READY=1")
    assert "STATUS=watching 1 repo, " in ready
    d.wait_status(work.head(), "passed")
    d.signal(signal.SIGHUP)
    reloading = notify.wait_for("RELOADING=1")
    assert any(line.startswith("MONOTONIC_USEC=") for line in reloading.splitlines())
    notify.wait_for("READY=1")
    d.signal(signal.SIGTERM)
    notify.wait_for("STOPPING=1")
    assert d.proc.wait(30) == 0


def test_status_text_agrees_with_its_counts():
    from scratchd.service import status_text

    assert status_text(1, 0, 0) == "watching 1 repo, 0 running, 0 queued"
    assert status_text(2, 1, 3) == "watching 2 repos, 1 running, 3 queued"
    assert status_text(0, 0, 0) == "watching 0 repos, 0 running, 0 queued"
    assert status_text(1, 0, 0, 1) == "watching 1 repo, 0 running, 0 queued, 1 unreadable"
