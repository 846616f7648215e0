"""Stillness: an idle daemon writes nothing to its state directory and sleeps on events.

The daemon used to refresh a heartbeat row every 2 s and poll SQLite every
0.2 s. Liveness now comes from its lock and cross-process commands ring a
FIFO, so with nothing happening not a byte changes under ``state_dir``; yet
``scratchd trigger`` still starts a build at once, long before the
safety-net look at the database (``poll_interval``) would have found it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401

IDLE = 6.0  # seconds watched: three of the old heartbeats, thirty of the old ticks


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and mtime (dirs too: files come and go)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            found[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return found


def settled(root: Path, quiet: float = 1.5, timeout: float = 20.0) -> dict:
    """Wait until nothing changed for ``quiet`` seconds (the first build's aftermath)."""
    deadline = time.monotonic() + timeout
    last, since = snapshot(root), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = snapshot(root)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
    raise AssertionError(f"the state directory never settled: {sorted(last)}")


def test_idle_daemon_writes_nothing_and_wakes_on_a_cli_trigger(tmp_path, make_daemon):
    work = WorkRepo(tmp_path / "app")
    work.commit("wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    d = make_daemon([repo_table("app", work.path)], poll_interval="60s").start()
    first = d.wait_status(work.head(), "passed")

    before = settled(d.state.root)
    time.sleep(IDLE)
    after = snapshot(d.state.root)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"an idle daemon wrote to {changed}"

    t0 = time.time()
    out = subprocess.run(
        [sys.executable, "-m", "scratchd", "trigger", "app", "--config", str(d.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    d.wait(
        lambda: any(b.id > first.id and b.started_at for b in d.builds()),
        timeout=20,
        what="the triggered build to start",
    )
    started = next(b for b in d.builds() if b.id > first.id)
    assert started.trigger == "manual"
    # Far below the 60 s safety net: the doorbell woke the daemon, not a timer.
    assert started.started_at - t0 < 10
