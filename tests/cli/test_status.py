"""scratchd status: liveness from the daemon's lock, the status row, queue and running builds."""

from __future__ import annotations

import json
import os
import subprocess
import time

from scratchd.cli.status import NOT_RUNNING
from scratchd.models import Commit, Trigger
from scratchd.store import DaemonLock
from tests.cli.state_env import make_env


def test_no_state_yet(tmp_path, capsys):
    env = make_env(tmp_path)
    code, out, _ = env.cli(capsys, "status")
    assert code == NOT_RUNNING and "not running" in out


def test_alive_daemon_with_queue_and_running(tmp_path, capsys):
    env = make_env(tmp_path)
    DaemonLock(env.state.root).acquire()  # what a running daemon holds; dropped with the fd
    store = env.store()
    store.heartbeat("watching 1 repository", ["app"], started_at=time.time() - 65)
    store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)
    store.enqueue([Commit("app", "refs/heads/dev", "b" * 40)], Trigger.PUSH)
    store.claim_next(max_running=1)
    store.request_cancel(1)
    code, out, _ = env.cli(capsys, "status")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"daemon: running (pid {os.getpid()}") and "up 1m0" in lines[0]
    assert lines[1] == "watched repositories (1): app"
    assert lines[2] == "queued: 1" and lines[3].split()[:4] == ["2", "app", "dev", "bbbbbbbb"]
    assert lines[4] == "running: 1" and "(cancel requested)" in lines[5]

    code, out, _ = env.cli(capsys, "status", "--json")
    data = json.loads(out)
    assert code == 0 and data["alive"] and data["watched"] == ["app"]
    assert [b["id"] for b in data["queued"]] == [2] and [b["id"] for b in data["running"]] == [1]


def test_dead_pid_means_not_running(tmp_path, capsys):
    env = make_env(tmp_path)
    gone = subprocess.Popen(["true"])
    gone.wait()
    env.store().heartbeat("watching", ["app"], started_at=time.time(), pid=gone.pid)
    code, out, _ = env.cli(capsys, "status")
    assert code == NOT_RUNNING and f"pid {gone.pid}" in out and "not running" in out


def test_stale_heartbeat_means_not_running(tmp_path, capsys):
    env = make_env(tmp_path)
    store = env.store()
    store.heartbeat("watching", ["app"], started_at=1.0)
    store.db.conn().execute("UPDATE daemon SET updated_at = ?", (time.time() - 300,))
    code, out, _ = env.cli(capsys, "status")
    assert code == NOT_RUNNING and "last heartbeat 5m00s ago" in out


def test_a_quiet_daemon_is_alive_however_old_its_status_row(tmp_path, capsys):
    """Liveness is the lock, not a clock: an idle daemon writes nothing for hours."""
    env = make_env(tmp_path)
    lock = DaemonLock(env.state.root)
    lock.acquire()
    store = env.store()
    store.heartbeat("watching 1 repo, 0 running, 0 queued", ["app"], started_at=1.0)
    store.db.conn().execute("UPDATE daemon SET updated_at = ?", (time.time() - 7200,))
    code, out, _ = env.cli(capsys, "status")
    assert code == 0 and out.startswith("daemon: running") and "2h" in out.splitlines()[0]
    lock.release()  # the daemon died (the kernel drops the lock even on kill -9)
    code, out, _ = env.cli(capsys, "status")
    assert code == NOT_RUNNING and "not running" in out
