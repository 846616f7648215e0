"""scratchd trigger: queue a manual build of a real repository's branch or commit."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from scratchd.models import BuildStatus, Trigger
from scratchd.store import Store
from tests.cli.state_env import make_env
from tests.git.repos import bare_repo


@pytest.fixture
def env(tmp_path):
    return make_env(tmp_path)


def test_default_is_the_head_branch_tip(env, capsys):
    code, out, _ = env.cli(capsys, "trigger", "app")
    assert code == 0
    head = env.repo.head()
    assert out.strip() == f"queued build 1: app main {head[:8]}"
    (build,) = env.store().list_builds()
    assert (build.ref, build.sha, build.trigger) == ("refs/heads/main", head, Trigger.MANUAL)
    assert build.status == BuildStatus.QUEUED
    # a manual build leaves the daemon's last-seen ref alone
    assert env.store().get_ref("app", "refs/heads/main") is None


def test_branch_and_commit(env, capsys):
    first = env.repo.commit()
    env.repo.branch("feature/x")
    env.repo.switch("feature/x")
    tip = env.repo.commit()
    env.repo.switch("main")
    assert env.cli(capsys, "trigger", "app", "--branch", "feature/x")[0] == 0
    assert env.cli(capsys, "trigger", "app", "--commit", first[:7])[0] == 0
    builds = list(reversed(env.store().list_builds()))
    assert [(b.branch, b.sha) for b in builds] == [("feature/x", tip), ("main", first)]


def test_commit_only_on_a_side_branch_gets_that_branch(env, capsys):
    env.repo.branch("feature/y")
    env.repo.switch("feature/y")
    side = env.repo.commit()
    env.repo.switch("main")
    env.cli(capsys, "trigger", "app", "--commit", side)
    assert env.store().get(1).ref == "refs/heads/feature/y"


def test_same_commit_twice_is_one_queued_build(env, capsys):
    env.cli(capsys, "trigger", "app")
    code, out, _ = env.cli(capsys, "trigger", "app")
    assert code == 0 and out.startswith("queued build 1:")
    assert len(env.store().list_builds()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("trigger", "ap"), "no repository named 'ap'"),
        (("trigger", "app", "--branch", "nope"), "no branch or tag 'nope'"),
        (("trigger", "app", "--commit", "deadbeef"), "no commit 'deadbeef'"),
    ],
)
def test_bad_input_is_one_line(env, capsys, args, message):
    code, out, err = env.cli(capsys, *args)
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) == 1


def test_did_you_mean(env, capsys):
    assert "did you mean 'app'?" in env.cli(capsys, "trigger", "ap")[2]


def test_bare_repository(tmp_path, capsys):
    env = make_env(tmp_path / "x")
    bare = bare_repo(tmp_path / "srv.git")
    env.repo.push(str(bare), "main")
    env.config.write_text(env.config.read_text().replace(str(env.repo.path), str(bare)))
    assert env.cli(capsys, "trigger", "app")[0] == 0
    assert env.store().get(1).sha == env.repo.head()


def test_a_polling_reader_sees_a_trigger_from_another_process_at_once(env):
    """The daemon's wake-up: SQLite's data_version moves when another process commits."""
    reader = Store(env.state.db)  # the "daemon" has the DB open first
    version = reader.data_version()
    subprocess.run(
        [sys.executable, "-m", "scratchd", "trigger", "app", "--config", str(env.config)],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    # Bounded wait: the version moves when the trigger commits, not on a timer
    # (how fast that is is the daemon bench's business, not this test's).
    deadline = time.monotonic() + 30
    while reader.data_version() == version and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.data_version() != version
    job = reader.claim_next(max_running=1)
    assert job is not None and job.sha == env.repo.head()


def test_a_tag_by_full_ref(env, capsys):
    from tests.git.repos import git

    tagged = env.repo.head()
    git(env.repo.path, "tag", "-a", "v1", "-m", "release")  # annotated: peeled to its commit
    env.repo.commit()
    assert env.cli(capsys, "trigger", "app", "--branch", "refs/tags/v1")[0] == 0
    build = env.store().get(1)
    assert (build.ref, build.branch, build.sha) == ("refs/tags/v1", "v1", tagged)
