"""Which build pushed a digest: the index (or manifest) and the platform manifest inside it.

The attestation stays reproducible (no build id in it at the default
provenance), so the state database is where an image finds its build.
"""

from __future__ import annotations

import json
import sqlite3

from scratchd.models import Commit, Trigger
from scratchd.store import StateDir, Store
from scratchd.store.schema import MIGRATIONS

INDEX, PLATFORM = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def _passed(store: Store, n: int, images=(INDEX,), platforms=(PLATFORM,)) -> int:
    store.enqueue([Commit("app", "refs/heads/main", f"{n:040x}")], Trigger.PUSH)
    build = store.claim_next(max_running=1)
    assert store.mark_passed(build.id, list(images), platforms=list(platforms))
    return build.id


def test_every_build_that_pushed_a_digest_is_found_by_either_digest(tmp_path):
    store = Store(StateDir(tmp_path / "state").db)
    first = _passed(store, 1)
    second = _passed(store, 2)  # the same commit's reproducible index, rebuilt
    other = _passed(store, 3, images=("sha256:" + "3" * 64,), platforms=())

    assert [b.id for b in store.builds_with_digest(INDEX)] == [second, first]
    assert [b.id for b in store.builds_with_digest(PLATFORM)] == [second, first]
    assert [b.id for b in store.builds_with_digest("sha256:" + "3" * 64)] == [other]
    assert store.builds_with_digest("sha256:" + "9" * 64) == []


def test_a_failed_or_unfinished_build_names_no_digest(tmp_path):
    store = Store(StateDir(tmp_path / "state").db)
    store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)
    build = store.claim_next(max_running=1)
    store.mark_failed(build.id, "step failed")
    assert not store.mark_passed(build.id, [INDEX], platforms=[PLATFORM])  # refused: finished
    assert store.builds_with_digest(INDEX) == []


def test_pruned_builds_take_their_digests_along(tmp_path):
    store = Store(StateDir(tmp_path / "state").db)
    for n in range(3):
        _passed(store, n)
    store.prune("app", keep=1)
    assert [b.id for b in store.builds_with_digest(PLATFORM)] == [3]
    rows = store.db.read("SELECT count(*) FROM image_digests")[0][0]
    assert rows == 2  # the kept build's index and platform digests


def test_upgrade_indexes_the_digests_of_builds_recorded_before(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:4]:  # the schema before digests were indexed
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 4")
    conn.execute(
        "INSERT INTO builds (repo, ref, branch, sha, trigger, status, created_at, images)"
        " VALUES ('app', 'refs/heads/main', 'main', ?, 'push', 'passed', 1, ?)",
        ("b" * 40, json.dumps([INDEX])),
    )
    conn.commit()
    conn.close()
    store = Store(path)
    assert [b.sha for b in store.builds_with_digest(INDEX)] == ["b" * 40]
