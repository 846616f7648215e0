"""Ref reading and commit walks, judged against what ``git`` itself says."""

from __future__ import annotations

import pytest

from scratchd.errors import GitError
from scratchd.git.refs import (
    diff_refs,
    git_dir,
    read_refs,
    ref_matches,
    with_commits,
)
from tests.git.repos import WorkRepo, bare_repo, git


def test_ref_matches_branch_and_tag_globs():
    assert ref_matches("refs/heads/main", ["main"])
    assert ref_matches("refs/heads/release/1.2", ["main", "release/*"])
    assert not ref_matches("refs/heads/feature", ["main", "release/*"])
    assert not ref_matches("refs/tags/v1", ["*"])
    assert ref_matches("refs/tags/v1", [], ["v*"])
    assert not ref_matches("refs/notes/scratchd", ["*"], ["*"])


def test_read_refs_of_work_and_bare_repos(tmp_path):
    work = WorkRepo(tmp_path / "work")
    first = work.commit()
    work.branch("release/1")
    work.branch("feature")
    git(work.path, "tag", "-a", "v1", "-m", "annotated")
    git(work.path, "tag", "v2-light")
    refs = read_refs(work.path, ["main", "release/*"], ["v*"])
    assert refs == {
        "refs/heads/main": first,
        "refs/heads/release/1": first,
        "refs/tags/v1": first,  # annotated tag peeled to its commit
        "refs/tags/v2-light": first,
    }
    bare = bare_repo(tmp_path / "server.git")
    work.push(str(bare), "main")
    assert read_refs(bare, ["*"]) == {"refs/heads/main": first}


def test_read_refs_sees_packed_refs(tmp_path):
    work = WorkRepo(tmp_path / "work")
    sha = work.commit()
    work.branch("packed")
    git(work.path, "pack-refs", "--all")
    assert read_refs(work.path, ["*"]) == {"refs/heads/main": sha, "refs/heads/packed": sha}


def test_git_dir_of_work_and_bare(tmp_path):
    work = WorkRepo(tmp_path / "work")
    assert git_dir(work.path) == work.path / ".git"
    bare = bare_repo(tmp_path / "b.git")
    assert git_dir(bare) == bare


def test_missing_repository_is_a_git_error_naming_the_path(tmp_path):
    with pytest.raises(GitError, match="nowhere"):
        read_refs(tmp_path / "nowhere", ["*"])


def test_diff_refs_reports_created_moved_deleted():
    before = {"refs/heads/a": "1" * 40, "refs/heads/b": "2" * 40}
    after = {"refs/heads/a": "3" * 40, "refs/heads/c": "4" * 40}
    updates = diff_refs("r", before, after)
    assert [(u.ref, u.old, u.new) for u in updates] == [
        ("refs/heads/a", "1" * 40, "3" * 40),
        ("refs/heads/b", "2" * 40, None),
        ("refs/heads/c", None, "4" * 40),
    ]
    assert updates[1].deleted and updates[2].created


def test_fast_forward_reports_each_commit_oldest_first(tmp_path):
    work = WorkRepo(tmp_path / "work")
    old = work.commit()
    shas = [work.commit() for _ in range(3)]
    [update] = diff_refs("r", {"refs/heads/main": old}, read_refs(work.path, ["main"]))
    update = with_commits(work.path, update)
    assert [c.sha for c in update.commits] == shas
    assert update.tip.sha == shas[-1]
    assert update.commits[0].time > 0 and update.commits[0].branch == "main"


def test_walk_follows_first_parent_only(tmp_path):
    work = WorkRepo(tmp_path / "work")
    old = work.commit()
    work.branch("side")
    work.switch("side")
    work.commit(files={"side.txt": "x"})
    work.switch("main")
    mine = work.commit(files={"main.txt": "y"})
    git(work.path, "merge", "-q", "--no-ff", "-m", "merge side", "side")
    merge = work.head()
    update = with_commits(
        work.path, diff_refs("r", {"refs/heads/main": old}, {"refs/heads/main": merge})[0]
    )
    assert [c.sha for c in update.commits] == [mine, merge]


def test_force_push_reports_only_rewritten_commits(tmp_path):
    work = WorkRepo(tmp_path / "work")
    base = work.commit()
    old = work.commit(files={"a": "old"})
    git(work.path, "reset", "-q", "--hard", base)
    new1 = work.commit(files={"a": "new1"})
    new2 = work.commit(files={"a": "new2"})
    update = with_commits(
        work.path, diff_refs("r", {"refs/heads/main": old}, {"refs/heads/main": new2})[0]
    )
    assert [c.sha for c in update.commits] == [new1, new2]


def test_new_branch_reports_its_tip_only(tmp_path):
    work = WorkRepo(tmp_path / "work")
    for _ in range(3):
        tip = work.commit()
    update = with_commits(work.path, diff_refs("r", {}, {"refs/heads/main": tip})[0])
    assert [c.sha for c in update.commits] == [tip]


def test_walk_is_bounded(tmp_path):
    work = WorkRepo(tmp_path / "work")
    old = work.commit()
    shas = [work.commit() for _ in range(5)]
    update = diff_refs("r", {"refs/heads/main": old}, {"refs/heads/main": shas[-1]})[0]
    assert [c.sha for c in with_commits(work.path, update, limit=2).commits] == shas[-2:]


def test_deleted_ref_has_no_commits(tmp_path):
    work = WorkRepo(tmp_path / "work")
    sha = work.commit()
    update = with_commits(work.path, diff_refs("r", {"refs/heads/gone": sha}, {})[0])
    assert update.deleted and update.commits == () and update.tip is None


def test_rewound_branch_reports_its_new_tip(tmp_path):
    work = WorkRepo(tmp_path / "work")
    older = work.commit()
    newer = work.commit()
    update = diff_refs("r", {"refs/heads/main": newer}, {"refs/heads/main": older})[0]
    assert [c.sha for c in with_commits(work.path, update).commits] == [older]
