"""inotify plumbing: every watched repository shares one inotify instance."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

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


def inotify_watches() -> int:
    """Watches held by this process's inotify instances (the kernel's count, fdinfo)."""
    total = 0
    for fd in os.listdir(f"/proc/{os.getpid()}/fd"):
        try:
            if "inotify" in os.readlink(f"/proc/{os.getpid()}/fd/{fd}"):
                total += Path(f"/proc/{os.getpid()}/fdinfo/{fd}").read_text().count("inotify wd:")
        except OSError:
            continue
    return total


def make_git_dir(gdir: Path) -> Path:
    (gdir / "refs" / "heads").mkdir(parents=True)
    (gdir / "refs" / "tags").mkdir()
    (gdir / "objects" / "ab").mkdir(parents=True)
    (gdir / "HEAD").write_text("ref: refs/heads/main\n")
    return gdir


def context_switches(thread: threading.Thread) -> int:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    return sum(int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line)


def test_many_repositories_cost_one_thread_and_a_few_watches_each(tmp_path):
    """watchdog's Observer ran a thread per watched path: 2,000 threads for 1,000 repositories."""
    # Threads are compared by identity: other tests' threads may end meanwhile.
    before_threads, before_watches = set(threading.enumerate()), inotify_watches()
    watches = GitDirWatches()
    watches.start()
    try:
        for i in range(150):
            gdir = make_git_dir(tmp_path / f"r{i}.git")
            assert watches.watch(gdir, fire=lambda: None, cancelled=lambda: False)
        [reader] = set(threading.enumerate()) - before_threads
        assert reader.name == "scratchd-inotify"
        # git dir, refs, heads, tags: objects/ is never watched
        assert inotify_watches() - before_watches == 150 * 4
    finally:
        watches.stop()
    assert not reader.is_alive()


def test_an_idle_watch_never_wakes(tmp_path):
    """Stillness: the reader thread sleeps in poll() with no timeout while nothing changes."""
    watches = GitDirWatches()
    watches.start()
    try:
        watches.watch(make_git_dir(tmp_path / "r.git"), lambda: None, lambda: False)
        reader = next(t for t in threading.enumerate() if t.name == "scratchd-inotify")
        time.sleep(0.3)  # it reaches poll()
        before = context_switches(reader)
        time.sleep(2.5)  # a reader with a 1 s timeout would have woken twice
        assert context_switches(reader) == before
    finally:
        watches.stop()


def test_unwatch_removes_every_watch_of_the_repository(tmp_path):
    before = inotify_watches()
    watches = GitDirWatches()
    watches.start()
    try:
        handles = watches.watch(make_git_dir(tmp_path / "r.git"), lambda: None, lambda: False)
        (tmp_path / "r.git" / "refs" / "heads" / "feature").mkdir()
        time.sleep(0.2)  # the new directory is watched by the reader thread
        watches.unwatch(handles)
        assert inotify_watches() == before
    finally:
        watches.stop()


def test_a_ref_in_a_directory_made_after_watching_fires(tmp_path):
    gdir = make_git_dir(tmp_path / "r.git")
    fired = threading.Event()
    watches = GitDirWatches()
    watches.start()
    try:
        watches.watch(gdir, fire=fired.set, cancelled=lambda: False)
        (gdir / "refs" / "heads" / "feature").mkdir()
        assert fired.wait(5)
        time.sleep(0.1)
        fired.clear()
        (gdir / "refs" / "heads" / "feature" / "x.lock").write_text("0" * 40)
        os.rename(gdir / "refs/heads/feature/x.lock", gdir / "refs/heads/feature/x")
        assert fired.wait(5)  # the new directory was watched on the spot
        time.sleep(0.1)
        fired.clear()
        (gdir / "index").write_text("noise")
        (gdir / "objects" / "ab" / "cd").write_text("noise")
        (gdir / "refs" / "heads" / "y.lock").write_text("0" * 40)
        assert not fired.wait(0.3)  # not HEAD, packed-refs, or a ref
        (gdir / "packed-refs").write_text("# pack-refs\n")
        assert fired.wait(5)
    finally:
        watches.stop()


def test_a_failing_callback_leaves_other_repositories_watched(tmp_path):
    """One reader thread serves every repository: a callback's exception must not end it."""
    fired = threading.Event()

    def broken() -> None:
        raise RuntimeError("sink exploded")

    watches = GitDirWatches()
    watches.start()
    try:
        watches.watch(make_git_dir(tmp_path / "a.git"), broken, lambda: False)
        watches.watch(make_git_dir(tmp_path / "b.git"), fired.set, lambda: False)
        (tmp_path / "a.git" / "refs" / "heads" / "main").write_text("0" * 40)
        time.sleep(0.2)
        (tmp_path / "b.git" / "refs" / "heads" / "main").write_text("0" * 40)
        assert fired.wait(5)
    finally:
        watches.stop()


def test_an_unreadable_git_dir_raises_and_leaves_nothing_behind(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    gdir = make_git_dir(tmp_path / "r.git")
    (gdir / "refs").chmod(0)
    before = inotify_watches()
    watches = GitDirWatches()
    watches.start()
    try:
        with pytest.raises(PermissionError):
            watches.watch(gdir, lambda: None, lambda: False)
        assert inotify_watches() == before
    finally:
        (gdir / "refs").chmod(0o755)
        watches.stop()


def test_a_git_dir_without_refs_raises_and_leaves_nothing_behind(tmp_path):
    gdir = tmp_path / "r.git"
    gdir.mkdir()  # half-made: the git dir is watchable, refs/ is not there
    before = inotify_watches()
    watches = GitDirWatches()
    watches.start()
    try:
        with pytest.raises(FileNotFoundError):
            watches.watch(gdir, lambda: None, lambda: False)
        assert inotify_watches() == before
    finally:
        watches.stop()
