"""inotify plumbing: every watched repository shares one inotify instance."""

from __future__ import annotations

import os
from pathlib import Path

from scratchd.git.inotify import GitDirWatches


def inotify_instances() -> int:
    fd_dir = Path(f"/proc/{os.getpid()}/fd")
    count = 0
    for fd in os.listdir(fd_dir):
        try:
            count += "inotify" in os.readlink(fd_dir / fd)
        except OSError:
            continue
    return count


def test_many_repositories_share_one_inotify_instance(tmp_path):
    # Debian allows 128 inotify instances per user. watchdog before 7.0 made
    # one per scheduled path (two per repository), so about 64 repositories
    # were the ceiling; this is why pyproject asks for watchdog>=7.
    before = inotify_instances()
    watches = GitDirWatches()
    watches.start()
    try:
        for i in range(150):
            gdir = tmp_path / f"r{i}.git"
            (gdir / "refs" / "heads").mkdir(parents=True)
            (gdir / "HEAD").write_text("ref: refs/heads/main\n")
            assert watches.watch(gdir, fire=lambda: None, cancelled=lambda: False)
        assert inotify_instances() - before <= 1
    finally:
        watches.stop()
