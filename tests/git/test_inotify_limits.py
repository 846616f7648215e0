"""inotify limits: a clear message naming the sysctl, before and when they run out.

Two ways in: the watcher reads the limits under an injectable ``/proc/sys``
(so a test presents a low one without touching the machine), and a real low
limit inside a user namespace (``user.max_inotify_watches``, per namespace
since Linux 5.11) makes the kernel refuse watches for real.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from scratchd.git.limits import WATCHES_PER_REPO, InotifyLimits
from scratchd.git.watcher import Watcher, WatchSpec
from tests.git.repos import WorkRepo
from tests.git.test_watcher import RecordingSink


def fake_proc(root: Path, watches: int, instances: int = 128) -> Path:
    (root / "fs/inotify").mkdir(parents=True)
    (root / "fs/inotify/max_user_watches").write_text(f"{watches}\n")
    (root / "fs/inotify/max_user_instances").write_text(f"{instances}\n")
    return root


def repos(tmp_path: Path, count: int) -> list[WatchSpec]:
    specs = []
    for i in range(count):
        work = WorkRepo(tmp_path / f"r{i}")
        work.commit()
        specs.append(WatchSpec(f"r{i}", work.path))
    return specs


def test_limits_too_low_for_the_repositories_are_named_once(tmp_path, caplog):
    specs = repos(tmp_path, 4)
    proc = fake_proc(tmp_path / "proc", watches=3 * WATCHES_PER_REPO)
    sink = RecordingSink()
    watcher = Watcher(sink, poll_interval=3600, limits_dir=proc)
    watcher.start()
    try:
        with caplog.at_level(logging.ERROR, logger="scratchd.git.watcher"):
            watcher.configure(specs)
            watcher.configure(specs)  # a reload: said once, not again
        sink.wait_for(lambda s: len(s.reports) == 4)  # still scanned: the poll covers them
    finally:
        watcher.stop()
    said = [r.getMessage() for r in caplog.records if "inotify" in r.getMessage()]
    assert len(said) == 1
    assert "fs.inotify.max_user_watches is 18" in said[0]
    assert "sysctl fs.inotify.max_user_watches=" in said[0] and "/etc/sysctl.d/" in said[0]


def test_enough_watches_say_nothing(tmp_path, caplog):
    proc = fake_proc(tmp_path / "proc", watches=8192)
    watcher = Watcher(RecordingSink(), poll_interval=3600, limits_dir=proc)
    watcher.start()
    try:
        with caplog.at_level(logging.WARNING):
            watcher.configure(repos(tmp_path, 2))
    finally:
        watcher.stop()
    assert not [r for r in caplog.records if "inotify" in r.getMessage()]


def test_the_lower_of_global_and_namespace_limits_wins(tmp_path):
    proc = fake_proc(tmp_path / "proc", watches=8192, instances=128)
    (proc / "user").mkdir()
    (proc / "user/max_inotify_watches").write_text("100\n")
    assert InotifyLimits.read(proc) == InotifyLimits(128, 100)
    assert InotifyLimits.read(tmp_path / "nothing") == InotifyLimits(None, None)


REAL_LIMIT = """
import logging, sys, time
from pathlib import Path
from scratchd.git.watcher import Watcher, WatchSpec
from tests.git.test_watcher import RecordingSink

logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
specs = [WatchSpec(p.name, p) for p in sorted(Path(sys.argv[1]).iterdir())]
sink = RecordingSink()
watcher = Watcher(sink, poll_interval=3600, limits_dir=Path(sys.argv[2]))
watcher.start()
watcher.configure(specs)
sink.wait_for(lambda s: len(s.reports) == len(specs))
watcher.stop()
print("reported", len(sink.reports))
"""


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs util-linux unshare")
def test_a_real_low_limit_in_a_user_namespace_names_the_sysctl(tmp_path):
    """The kernel refuses the watches (ENOSPC); the log says which sysctl, not "disk full"."""
    repos(tmp_path / "repos", 3)
    # No limits visible to the pre-check (an empty /proc/sys): only the kernel's refusal speaks.
    script = textwrap.dedent(REAL_LIMIT)
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [
            "unshare", "--user", "--map-root-user", "sh", "-c",
            'echo 4 > /proc/sys/user/max_inotify_watches && exec "$@"', "sh",
            sys.executable, "-c", script, str(tmp_path / "repos"), str(tmp_path / "empty"),
        ],
        capture_output=True, text=True, timeout=60, cwd=root,
    )  # fmt: skip
    if "Operation not permitted" in out.stderr or "cannot open" in out.stderr:
        pytest.skip(f"no user namespaces here: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    assert "inotify watch limit reached" in out.stdout
    assert "sysctl fs.inotify.max_user_watches=" in out.stdout
    assert out.stdout.count("inotify watch limit reached") == 1
    assert "reported 3" in out.stdout  # the repositories were still read
