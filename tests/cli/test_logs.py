"""scratchd logs: print a finished build's archived log, follow a running one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from scratchd.models import Commit, Trigger
from scratchd.store import BuildLog
from tests.cli.state_env import make_env


def started_build(env):
    store = env.store()
    store.enqueue([Commit("app", "refs/heads/main", env.repo.head())], Trigger.PUSH)
    build = store.claim_next(max_running=1)
    return store, build, env.state.log_path("app", build.id)


def test_finished_build_log_from_the_archive(tmp_path, capsys):
    env = make_env(tmp_path)
    store, build, path = started_build(env)
    with BuildLog(path) as log:
        log.line("step 1")
        log.line("warning", stream="stderr")
    log.finish()
    store.mark_passed(build.id)
    code, out, _ = env.cli(capsys, "logs", str(build.id))
    assert code == 0
    assert [line.split(" ", 1)[1] for line in out.splitlines()] == [
        "stdout step 1",
        "stderr warning",
    ]


def test_log_path_recorded_in_the_store_wins(tmp_path, capsys):
    env = make_env(tmp_path)
    store, build, _ = started_build(env)
    elsewhere = tmp_path / "elsewhere.log"
    BuildLog(elsewhere).line("custom place")
    store.set_paths(build.id, log_path=str(elsewhere))
    assert "custom place" in env.cli(capsys, "logs", str(build.id))[1]


def test_no_log_yet(tmp_path, capsys):
    env = make_env(tmp_path)
    started_build(env)
    code, _, err = env.cli(capsys, "logs", "1")
    assert code == 1 and "no log yet (running)" in err
    assert env.cli(capsys, "logs", "5")[0] == 2


def test_follow_until_the_build_ends(tmp_path):
    env = make_env(tmp_path)
    store, build, path = started_build(env)
    log = BuildLog(path)
    log.line("before follow")
    follower = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scratchd",
            "logs",
            str(build.id),
            "-f",
            "--config",
            str(env.config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        time.sleep(1.0)
        assert follower.poll() is None  # still following a running build
        for n in range(20):
            log.line(f"live {n}")
        log.finish()
        store.mark_failed(build.id, "exit 1", failed_step="make")
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0
    texts = [line.split(" ", 2)[2] for line in out.splitlines()]
    assert texts == ["before follow"] + [f"live {n}" for n in range(20)]
    assert f"build {build.id} failed" in err
