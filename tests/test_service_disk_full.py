"""The daemon on a full disk: a real ``scratchd run`` with its state directory on an 8 MB tmpfs.

A step fills the disk through the build cache. The build must end as an
infrastructure error (queued again for a retry, not left ``running``), the
daemon must stay up with its worker slot free, say once that the disk is
full (not once per heartbeat), start nothing while it is, and carry on by
itself once the operator frees space.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from scratchd.store import StateDir
from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401
from tests.support.services import unavailable

FILL_YML = """\
build:
  steps:
    - script:
        name: fill
        code: |
          if [ ! -e "$WERCKER_CACHE_DIR/filled-once" ]; then
            touch "$WERCKER_CACHE_DIR/filled-once"
            echo "filling the disk"
            head -c 64M /dev/zero > "$WERCKER_CACHE_DIR/fill"
          fi
          echo "built $WERCKER_GIT_COMMIT"
"""

FULL = "the state directory's disk is full"
BACK = "space is back on the state directory's disk"


@pytest.fixture
def small_fs(tmp_path):
    """An 8 MB tmpfs, unmounted after the test."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def count(text: str, needle: str) -> int:
    return sum(needle in line for line in text.splitlines())


def test_a_build_that_fills_the_disk_is_retried_once_space_is_back(tmp_path, small_fs, make_daemon):
    work = WorkRepo(tmp_path / "app")
    work.commit("fill the disk", files={"wercker.yml": FILL_YML})
    other = WorkRepo(tmp_path / "other")
    other.commit("quick", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    d = make_daemon(
        [repo_table("app", work.path), repo_table("other", other.path)],
        state_dir=str(small_fs / "state"),
        max_concurrent_builds=1,
    )
    d.state = StateDir(small_fs / "state")  # where the test reads the database
    d.start()
    fill = small_fs / "state" / "cache" / "app" / "fill"
    d.wait(lambda: fill.exists() and FULL in d.log(), timeout=60, what="the disk filled up")

    # The build is not left running: queued again as an infrastructure error, and
    # nothing starts while the disk is full (the queue keeps it, attempts unused).
    d.wait(lambda: d.builds()[0].status == "queued", timeout=30, what="the build queued again")
    waiting = other.commit("while the disk is full")  # the queue takes it, nothing starts
    d.wait(lambda: d.builds(repo="other")[-1].sha == waiting, timeout=30, what="queued")
    time.sleep(5)  # more than two heartbeats on a full disk
    (build,) = d.builds(repo="app")
    assert d.builds(repo="other")[-1].status == "queued"
    assert build.status == "queued", build
    assert "no space left" in build.message
    assert build.attempt == 2  # the retry, not yet started: no attempt used up while full
    assert not d.store().running()
    assert d.proc.poll() is None  # the daemon is up
    log = d.log()
    assert count(log, FULL) == 1, log
    assert "Traceback" not in log
    assert "heartbeat failed" not in log
    assert count(log, "cannot write the state database") <= 1

    os.unlink(fill)  # the operator frees space; the daemon notices by itself
    passed = d.wait_status(work.head(), "passed", timeout=60)
    assert passed.id == build.id and passed.attempt == 2
    d.wait_status(waiting, "passed", timeout=60)
    assert count(d.log(), BACK) == 1

    sha = work.commit("next", files={"note.txt": "more\n"})
    d.wait_status(sha, "passed", timeout=60)
    log = d.log()
    assert (count(log, FULL), count(log, BACK)) == (1, 1), log  # nothing per heartbeat
    assert d.store().integrity_check() == "ok"
