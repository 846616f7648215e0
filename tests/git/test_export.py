"""export_tree: a commit's files, modes and links, and its facts, without touching the repo."""

from __future__ import annotations

import os

import pytest

from scratchd.errors import GitError
from scratchd.git.export import export_tree, parse_remote
from tests.git.repos import WorkRepo, git


def test_export_writes_the_commit_not_the_work_tree(tmp_path):
    repo = WorkRepo(tmp_path / "repo")
    first = repo.commit("one", {"a.txt": "one\n", "bin/run.sh": "#!/bin/sh\n", "d/e/f": "deep"})
    os.symlink("a.txt", repo.path / "link")
    git(repo.path, "add", "link")
    git(repo.path, "commit", "-q", "-m", "link")
    repo.commit("two", {"a.txt": "two\n"})
    (repo.path / "a.txt").write_text("uncommitted\n")
    (repo.path / "untracked").write_text("x")
    status = git(repo.path, "status", "--porcelain")
    index = (repo.path / ".git" / "index").read_bytes()

    info = export_tree(repo.path, "HEAD", tmp_path / "out")
    out = tmp_path / "out"
    assert (out / "a.txt").read_text() == "two\n"
    assert not (out / "untracked").exists() and not (out / ".git").exists()
    assert os.access(out / "bin" / "run.sh", os.X_OK) and not os.access(out / "a.txt", os.X_OK)
    assert os.readlink(out / "link") == "a.txt" and (out / "d/e/f").read_text() == "deep"
    assert info.sha == repo.head() and info.branch == "main" and info.message == "two\n"
    assert info.commit_time > 0 and info.author_time > 0
    assert (repo.path / ".git" / "index").read_bytes() == index
    assert git(repo.path, "status", "--porcelain") == status

    old = export_tree(repo.path, first[:8], tmp_path / "old")
    assert old.sha == first and (tmp_path / "old" / "a.txt").read_text() == "one\n"


def test_branch_of_a_named_branch_and_remote_facts(tmp_path):
    repo = WorkRepo(tmp_path / "cities")
    repo.commit("one")
    repo.branch("feature")
    git(repo.path, "remote", "add", "origin", "git@github.com:acme/cities.git")
    info = export_tree(repo.path, "feature", tmp_path / "out")
    assert info.branch == "feature"
    assert (info.domain, info.owner, info.repository) == ("github.com", "acme", "cities")
    assert info.author == "Test Author <author@example.invalid>"  # the web page shows it


@pytest.mark.parametrize(
    ("url", "facts"),
    [
        (
            "https://gitlab.example.org/group/sub/app.git",
            ("gitlab.example.org", "group/sub", "app"),
        ),
        ("ssh://git@host.example:2222/o/r", ("host.example", "o", "r")),
        ("git@github.com:acme/cities.git", ("github.com", "acme", "cities")),
        ("", ("localhost", "srv", "cities")),
        ("/srv/git/cities.git", ("localhost", "srv", "cities")),
    ],
)
def test_parse_remote(url, facts, tmp_path):
    assert parse_remote(url, tmp_path / "srv" / "cities") == facts


def test_errors_are_git_errors(tmp_path):
    with pytest.raises(GitError, match="not a git repository"):
        export_tree(tmp_path, "HEAD", tmp_path / "out")
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("one")
    with pytest.raises(GitError, match="unknown revision 'nope'"):
        export_tree(repo.path, "nope", tmp_path / "out")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(GitError, match="not empty"):
        export_tree(repo.path, "HEAD", tmp_path / "full")
