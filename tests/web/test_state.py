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
