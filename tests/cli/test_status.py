"""scratchd status: liveness from the heartbeat row, queue and running builds."""

from __future__ import annotations

import json
import os
import subprocess
import time

from scratchd.cli.status import NOT_RUNNING
from scratchd.models import Commit, Trigger
from tests.cli.state_env import make_env


def test_no_state_yet(tmp_path, capsys):
    env = make_env(tmp_path)
    code, out, _ = env.cli(capsys, "status")
    assert code == NOT_RUNNING and "not running" in out


def test_alive_daemon_with_queue_and_running(tmp_path, capsys):
    env = make_env(tmp_path)
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
