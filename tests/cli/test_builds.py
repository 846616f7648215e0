"""scratchd builds: the table and JSON views of the state database."""

from __future__ import annotations

import json

import pytest

from scratchd.models import Commit, Trigger
from tests.cli.state_env import make_env


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
