"""sd_notify messages, received on a real datagram socket bound by the test."""

from __future__ import annotations

import os
import socket
import uuid

import pytest

from scratchd.sdnotify import Notifier, monotonic_usec


@pytest.fixture(params=["path", "abstract"])
def listener(request, tmp_path):
    """(address as $NOTIFY_SOCKET would say it, bound socket)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    if request.param == "path":
        address = str(tmp_path / "notify.sock")
        sock.bind(address)
    else:
        name = f"scratchd-test-{uuid.uuid4().hex}"
        sock.bind(b"\0" + name.encode())
        address = "@" + name
    yield address, sock
    sock.close()


def received(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.split("\n"))


def test_ready_with_status(listener):
    address, sock = listener
    notifier = Notifier(address)
    assert notifier.ready("watching 3 repos, 0 running, 0 queued")
    assert received(sock) == {"READY": "1", "STATUS": "watching 3 repos, 0 running, 0 queued"}


def test_status_watchdog_stopping(listener):
    address, sock = listener
    notifier = Notifier(address)
    notifier.status("watching 1 repo, 1 running, 2 queued")
    assert received(sock) == {"STATUS": "watching 1 repo, 1 running, 2 queued"}
    notifier.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}
    notifier.stopping()
    assert received(sock) == {"STOPPING": "1"}


def test_reloading_carries_monotonic_time(listener):
    address, sock = listener
    before = monotonic_usec()
    Notifier(address).reloading()
    message = received(sock)
    assert message["RELOADING"] == "1"
    assert before <= int(message["MONOTONIC_USEC"]) <= monotonic_usec()


def test_status_stays_one_line(listener):
    address, sock = listener
    Notifier(address).status("first\nsecond")
    assert received(sock) == {"STATUS": "first second"}


def test_without_notify_socket_everything_is_a_no_op():
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    assert notifier.watchdog_interval is None
    assert not notifier.ready()
    assert not notifier.watchdog()


def test_from_environ_reads_and_can_unset(listener):
    address, sock = listener
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}
    notifier = Notifier.from_environ(env, unset=True)
    assert env == {}  # child processes must not inherit the service's socket
    assert notifier.watchdog_interval == 10.0  # half of WatchdogSec=20
    assert notifier.watchdog()
    assert received(sock) == {"WATCHDOG": "1"}


def test_watchdog_of_another_pid_is_not_ours():
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_environ(env).watchdog_interval is None


def test_unreachable_socket_is_reported_not_raised(tmp_path, caplog):
    notifier = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert notifier.ready() is False
    assert "sd_notify" in caplog.text
