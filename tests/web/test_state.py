"""The web process's database access is read-only at SQLite's level, not by convention."""

from __future__ import annotations

import sqlite3

import pytest

from scratchd.web.state import ReadOnlyState, StateUnavailable
from tests.web.support import seed


def test_the_connection_refuses_writes(tmp_path):
    seed(tmp_path / "state")
    state = ReadOnlyState(tmp_path / "state")
    with state.connect() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
        conn.execute("UPDATE builds SET status='passed'")
    assert state.builds(limit=1)[0].status == "running"


def test_one_connection_per_page_and_a_clear_error_without_a_database(tmp_path):
    seed(tmp_path / "state")
    state = ReadOnlyState(tmp_path / "state")
    with state.connect() as outer:
        with state.connect() as inner:
            assert inner is outer
        assert state.repo_names() == ["app"]
    with pytest.raises(StateUnavailable, match="no state database"):
        ReadOnlyState(tmp_path / "nowhere").build(1)


def test_liveness_is_the_daemon_lock_not_the_age_of_the_status_row(tmp_path):
    """An idle daemon rewrites no row, so an old row with the lock held means alive."""
    import os

    from scratchd.store import DaemonInfo, DaemonLock
    from scratchd.web.views import daemon_alive

    root = tmp_path / "state"
    old = DaemonInfo(os.getpid(), "h", 1.0, 1.0, "watching 1 repo", ("app",), "/c")
    assert not daemon_alive(old, root)  # no lock file: no daemon
    lock = DaemonLock(root)
    lock.acquire()
    try:
        assert daemon_alive(old, root)  # a day-old row, but the lock is held
        stopped = DaemonInfo(os.getpid(), "h", 1.0, 1.0, "stopped", ("app",), "/c")
        assert not daemon_alive(stopped, root)  # this very holder stopped cleanly
    finally:
        lock.release()
    assert not daemon_alive(old, root)  # the lock went with the daemon


def test_a_daemon_starting_while_someone_asks_is_not_refused(tmp_path):
    """holder() takes a shared lock for an instant; acquire() waits that out."""
    import fcntl
    import os
    import threading

    from scratchd.store import DaemonLock

    root = tmp_path / "state"
    root.mkdir()
    (root / "daemon.lock").write_text("")
    fd = os.open(root / "daemon.lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH)  # a reader asking, frozen mid-question
    threading.Timer(0.2, os.close, (fd,)).start()
    lock = DaemonLock(root)
    lock.acquire()  # would raise "another scratchd daemon" without the patience
    lock.release()


def test_a_kept_connection_follows_a_database_recreated_underneath(tmp_path):
    """Connections are kept between requests, but never past the file they opened."""
    import shutil

    seed(tmp_path / "state")
    state = ReadOnlyState(tmp_path / "state")
    with state.connect() as first:
        pass
    with state.connect() as again:
        assert again is first  # kept: no reopening and schema read per page
    assert len(state.builds(limit=10)) == 4
    shutil.rmtree(tmp_path / "state")
    with pytest.raises(StateUnavailable, match="no state database"):
        state.build(1)
    seed(tmp_path / "state", repo="other")  # a new file at the same path
    assert state.repo_names() == ["other"]


def test_branch_heads_and_page_rows_match_the_records(tmp_path):
    from scratchd.models import Commit, Trigger
    from scratchd.store import StateDir, Store

    store = Store(StateDir(tmp_path / "state").db)
    commits = [
        Commit("app", f"refs/heads/{branch}", f"{n:040x}")
        for n, branch in enumerate(["main", "dev", "main", "fix/a", "dev", "main"])
    ]
    for c in commits:
        store.enqueue([c], Trigger.PUSH)
    store.enqueue([Commit("other", "refs/heads/zzz", "f" * 40)], Trigger.PUSH)
    expected = {}
    for b in store.list_builds(repo="app"):
        expected.setdefault(b.branch, b)
    store.close()
    state = ReadOnlyState(tmp_path / "state")
    heads = state.branch_heads("app")
    assert [h["branch"] for h in heads] == ["dev", "fix/a", "main"]
    assert heads == [expected[name].to_json() for name in ("dev", "fix/a", "main")]
    assert state.builds_json(limit=3) == [b.to_json() for b in state.builds(limit=3)]
    assert state.branch_heads("nothing") == []
