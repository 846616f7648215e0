"""Commands that open configured repositories read ones another user owns.

The scratchd service user reads its users' repositories; libgit2 refuses a
repository whose owner is not the current user unless told otherwise. The
setting is process-wide, so each command runs in a fresh interpreter here:
in-process, another test that already switched the check off would hide a
command that forgot to.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.state_env import make_env
from tests.support.services import unavailable

NOBODY = 65534


def scratchd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchd", *args], capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def foreign_env(tmp_path):
    """The usual config, its repository chowned to ``nobody``; libgit2 refuses it as is."""
    if os.geteuid() != 0:
        unavailable("needs root to give the repository to another user")
    env = make_env(tmp_path)
    (tmp_path / "state").mkdir()
    env.head = env.repo.head()  # git itself refuses the repository once it is chowned
    for root, dirs, files in os.walk(env.repo.path):
        for name in (root, *(os.path.join(root, n) for n in dirs + files)):
            os.lchown(name, NOBODY, NOBODY)
    # The precondition, checked rather than assumed (some libgit2 builds exempt root):
    # without scratchd's setting, this process cannot open the repository.
    plain = subprocess.run(
        [sys.executable, "-c", f"import pygit2; pygit2.Repository({str(env.repo.path)!r})"],
        capture_output=True,
        text=True,
    )
    assert plain.returncode != 0 and "not owned by current user" in plain.stderr, plain
    return env


def test_check_config_reads_a_repository_owned_by_another_user(foreign_env):
    result = scratchd("check-config", "--config", str(foreign_env.config))
    assert result.returncode == 0, result.stderr
    assert "not owned" not in result.stderr
    assert result.stdout.rstrip().endswith("OK: 0 error(s), 0 warning(s)")


def test_trigger_resolves_a_branch_tip_of_another_users_repository(foreign_env):
    result = scratchd("trigger", "--config", str(foreign_env.config), "app")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"queued build 1: app main {foreign_env.head[:8]}"


def test_build_exports_a_commit_of_another_users_repository(foreign_env, tmp_path):
    result = scratchd(
        "build",
        str(foreign_env.repo.path),
        "--executor",
        "host",
        "--cache-dir",
        str(tmp_path / "cache"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hi" in result.stdout
