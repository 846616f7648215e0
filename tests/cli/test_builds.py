"""scratchd builds: the table and JSON views of the state database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from scratchd.models import Commit, Trigger
from tests.cli.state_env import make_env
from tests.support.services import unavailable


@pytest.fixture
def env(tmp_path):
    env = make_env(tmp_path)
    store = env.store()
    sha = env.repo.head()
    store.enqueue([Commit("app", "refs/heads/main", sha)], Trigger.PUSH)
    job = store.claim_next(max_running=1, now=1000.0)
    store.mark_passed(
        job.id, ["127.0.0.1:5000/app:" + sha, "127.0.0.1:5000/app@sha256:ab"], now=1042
    )
    store.enqueue([Commit("app", "refs/heads/feature/x", "f" * 40)], Trigger.MANUAL)
    store.enqueue([Commit("other", "refs/heads/main", "e" * 40)], Trigger.PUSH)
    store.close()
    return env


def test_digest_names_the_builds_that_pushed_it(env, capsys):
    """The attestation is reproducible, so the state DB says which builds made an image."""
    index, platform = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    store = env.store()
    made = []
    for _ in (1, 2):  # built twice (a rebuild of the same commit gives the same index)
        job = store.claim_next(max_running=1, now=2000.0)
        store.mark_passed(job.id, [index], now=2001.0, platforms=[platform])
        made.insert(0, job.id)
    store.close()

    code, out, _ = env.cli(capsys, "builds", "--digest", platform, "--json")
    assert code == 0
    assert [(b["id"], b["images"]) for b in json.loads(out)] == [(i, [index]) for i in made]
    code, out, _ = env.cli(capsys, "builds", "--digest", index, "--limit", "1")
    assert [row.split()[0] for row in out.splitlines()[1:]] == [str(made[0])]
    code, out, _ = env.cli(capsys, "builds", "--digest", "sha256:" + "9" * 64)
    assert out.splitlines()[1:] == []


def test_table(env, capsys):
    code, out, _ = env.cli(capsys, "builds")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["ID", "REPO", "BRANCH", "COMMIT", "STATUS", "DURATION", "IMAGE"]
    assert rows[0].split() == ["3", "other", "main", "eeeeeeee", "queued"]
    assert rows[1].split() == ["2", "app", "feature/x", "ffffffff", "queued"]
    sha = env.repo.head()
    assert rows[2].split() == [
        "1",
        "app",
        "main",
        sha[:8],
        "passed",
        "42s",
        f"127.0.0.1:5000/app:{sha}",
    ]
    # columns line up under their headers
    assert rows[0].index("other") == header.index("REPO")
    assert rows[2].index("passed") == header.index("STATUS")


def test_filters_and_limit(env, capsys):
    out = env.cli(capsys, "builds", "--repo", "app", "--limit", "1")[1]
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["2"]
    out = env.cli(capsys, "builds", "--status", "passed")[1]
    assert [line.split()[0] for line in out.splitlines()[1:]] == ["1"]


def test_json(env, capsys):
    code, out, _ = env.cli(capsys, "builds", "--json")
    data = json.loads(out)
    assert code == 0 and [b["id"] for b in data] == [3, 2, 1]
    assert data[2]["status"] == "passed" and data[2]["images"][1].endswith("@sha256:ab")
    assert data[2]["started_at"] == 1000.0 and data[1]["trigger"] == "manual"


def test_bad_arguments(env, capsys):
    code, _, err = env.cli(capsys, "builds", "--status", "done")
    assert code == 2 and "unknown status 'done'" in err
    with pytest.raises(SystemExit):
        env.cli(capsys, "builds", "--limit", "0")


def test_no_database_yet(tmp_path, capsys):
    env = make_env(tmp_path)
    code, _, err = env.cli(capsys, "builds")
    assert code == 1 and "no state database" in err
    assert not env.state.db.exists()


#: Run ``"$@"`` with the directory ``$1`` mounted read-only over itself (a private mount).
READ_ONLY = 'mount --bind -o ro "$1" "$1" && shift && exec "$@"'


def builds_read_only(env, *args: str) -> subprocess.CompletedProcess:
    """``scratchd builds ARGS`` with a read-only state directory (a reader who may not write)."""
    mount = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", READ_ONLY, "sh"]
    argv = [sys.executable, "-m", "scratchd", "builds", "--config", str(env.config), *args]
    done = subprocess.run(
        [*mount, str(env.state.root), *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0 and ("unshare:" in done.stderr or "mount:" in done.stderr):
        unavailable(f"no private read-only mount here: {done.stderr.strip()}")
    return done


def files_of(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
    }


def test_a_read_only_state_directory(env, capsys):
    """Before, the command opened the database for writing and failed here."""
    expected = env.cli(capsys, "builds")[1]
    before = files_of(env.state.root)
    assert "scratchd.db-wal" not in before  # the daemon is not running
    done = builds_read_only(env)
    assert (done.returncode, done.stderr, done.stdout) == (0, "", expected)
    assert files_of(env.state.root) == before


def test_a_read_only_state_directory_beside_the_running_daemon(env):
    daemon = env.store()  # its open connection keeps -wal and -shm
    (build,) = daemon.enqueue([Commit("app", "refs/heads/main", "d" * 40)], Trigger.PUSH)
    try:
        done = builds_read_only(env, "--limit", "1")
    finally:
        daemon.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1].split() == [
        str(build.id),
        "app",
        "main",
        "dddddddd",
        "queued",
    ]


def test_listing_writes_nothing(env, capsys):
    """No file in the state directory is created, removed or touched by a listing."""
    before = files_of(env.state.root)
    for args in (("builds",), ("builds", "--repo", "app", "--json"), ("builds", "--digest", "x")):
        assert env.cli(capsys, *args)[0] == 0
    assert files_of(env.state.root) == before
