"""The cached mirror and export, against repositories made by ``git``."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from scratchd.errors import GitError
from scratchd.git.checkout import Checkout
from scratchd.git.notes import NOTES_REF, note_text, read_note, write_note
from scratchd.models import Commit
from tests.git.repos import WorkRepo, bare_repo, git


def fingerprint(repo: Path) -> dict[str, str]:
    """Every file of a repository (work tree and .git) with its content hash and mtime."""
    out = {}
    for dirpath, _, files in os.walk(repo):
        for name in files:
            path = Path(dirpath) / name
            stat = path.stat()
            out[str(path)] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {stat.st_mtime_ns}"
    return out


def main(repo: str, sha: str, ref: str = "refs/heads/main") -> Commit:
    return Commit(repo, ref, sha)


def test_export_writes_the_commit_and_never_touches_the_source(tmp_path):
    work = WorkRepo(tmp_path / "w")
    sha = work.commit(files={"app.sh": "#!/bin/sh\necho hi\n", "dir/data.txt": "data\n"})
    (work.path / "dir/data.txt").write_text("uncommitted edit\n")
    before = fingerprint(work.path)
    checkout = Checkout(tmp_path / "cache")
    info = checkout.export(main("w", sha), work.path, tmp_path / "out")
    assert (tmp_path / "out/dir/data.txt").read_text() == "data\n"
    assert os.access(tmp_path / "out/app.sh", os.X_OK)
    assert (info.sha, info.branch, info.repo) == (sha, "main", "w")
    assert fingerprint(work.path) == before
    assert git(checkout.mirror_path("w"), "rev-parse", "refs/heads/main") == sha


def test_mirror_is_reused_and_fetched_only_for_new_commits(tmp_path):
    server = bare_repo(tmp_path / "s.git")
    work = WorkRepo(tmp_path / "w")
    first = work.commit()
    work.push(str(server), "main")
    checkout = Checkout(tmp_path / "cache")
    checkout.export(main("s", first), server, tmp_path / "o1")
    second = work.commit()
    work.push(str(server), "main")
    checkout.export(main("s", second), server, tmp_path / "o2")
    assert (tmp_path / "o2/counter.txt").read_text() == "2\n"
    # Cached: with the source gone, a commit already mirrored still exports.
    shutil.rmtree(server)
    checkout.export(main("s", first), server, tmp_path / "o3")
    assert (tmp_path / "o3/counter.txt").read_text() == "1\n"


def test_force_pushed_away_commit_still_builds_from_the_mirror(tmp_path):
    server = bare_repo(tmp_path / "s.git")
    work = WorkRepo(tmp_path / "w")
    base = work.commit()
    doomed = work.commit(files={"f": "doomed"})
    work.push(str(server), "main")
    checkout = Checkout(tmp_path / "cache")
    checkout.ensure("s", server, doomed)
    git(work.path, "reset", "-q", "--hard", base)
    work.commit(files={"f": "new"})
    work.push(str(server), "main", force=True)
    git(server, "reflog", "expire", "--expire=now", "--all")
    git(server, "gc", "-q", "--prune=now")
    checkout.export(main("s", doomed), server, tmp_path / "out")
    assert (tmp_path / "out/f").read_text() == "doomed"


def test_a_commit_on_top_of_the_mirror_is_copied_whole_and_outlives_the_source(tmp_path):
    """One new commit is copied object by object (no fetch: the mirror's branch
    stays put); the mirror then holds all of it, checked by ``git fsck``, and
    builds it after the source force-pushed it away and pruned it."""
    server = bare_repo(tmp_path / "s.git")
    work = WorkRepo(tmp_path / "w")
    base = work.commit(files={"keep/a.txt": "a\n", "keep/deep/b.txt": "b\n"})
    work.push(str(server), "main")
    checkout = Checkout(tmp_path / "cache")
    checkout.ensure("s", server, base)
    files = {"keep/deep/b.txt": "changed\n", "new/dir/c.sh": "#!/bin/sh\n", "f": "doomed"}
    work.commit(files=files)
    git(work.path, "update-index", "--chmod=+x", "new/dir/c.sh")
    git(work.path, "commit", "-q", "--amend", "--no-edit")
    doomed = work.head()
    work.push(str(server), "main", force=True)
    mirror = checkout.mirror_path("s")
    checkout.ensure("s", server, doomed)
    assert git(mirror, "rev-parse", "refs/heads/main") == base  # copied, not fetched
    git(mirror, "fsck", "--strict", "--no-dangling", doomed)
    git(work.path, "reset", "-q", "--hard", base)
    work.push(str(server), "main", force=True)
    git(server, "reflog", "expire", "--expire=now", "--all")
    git(server, "gc", "-q", "--prune=now")
    checkout.export(main("s", doomed), server, tmp_path / "out")
    assert (tmp_path / "out/f").read_text() == "doomed"
    assert (tmp_path / "out/keep/a.txt").read_text() == "a\n"
    assert (tmp_path / "out/keep/deep/b.txt").read_text() == "changed\n"
    assert os.access(tmp_path / "out/new/dir/c.sh", os.X_OK)


def test_several_new_commits_are_fetched(tmp_path):
    work = WorkRepo(tmp_path / "w")
    checkout = Checkout(tmp_path / "cache")
    checkout.ensure("w", work.path, work.commit())
    work.commit()
    third = work.commit()
    checkout.export(main("w", third), work.path, tmp_path / "out")
    assert (tmp_path / "out/counter.txt").read_text() == "3\n"
    assert git(checkout.mirror_path("w"), "rev-parse", "refs/heads/main") == third


def test_broken_mirror_is_cloned_again(tmp_path):
    work = WorkRepo(tmp_path / "w")
    first = work.commit()
    checkout = Checkout(tmp_path / "cache")
    checkout.ensure("w", work.path, first)
    mirror = checkout.mirror_path("w")
    (mirror / "refs/heads/main.lock").write_text("left by a crash\n")
    second = work.commit()
    checkout.export(main("w", second), work.path, tmp_path / "out")
    assert (tmp_path / "out/counter.txt").read_text() == "2\n"


def test_unknown_commit_and_missing_repository_are_git_errors(tmp_path):
    work = WorkRepo(tmp_path / "w")
    work.commit()
    checkout = Checkout(tmp_path / "cache")
    with pytest.raises(GitError, match="is not in"):
        checkout.ensure("w", work.path, "0" * 40)
    with pytest.raises(GitError, match="does not exist"):
        checkout.ensure("x", tmp_path / "nowhere", "0" * 40)


def test_notes_show_in_git_log_and_are_replaced_on_rebuild(tmp_path):
    work = WorkRepo(tmp_path / "w")
    sha = work.commit()
    write_note(work.path, sha, note_text("failed", 3, message="step build failed\nmore"))
    write_note(work.path, sha, note_text("passed", 4, ["sha256:" + "a" * 64]))
    shown = git(work.path, "log", "-1", "--notes=scratchd", "--format=%N")
    assert shown == f"scratchd: passed\nbuild: 4\nimage: sha256:{'a' * 64}"
    assert read_note(work.path, sha).startswith("scratchd: passed")
    assert git(work.path, "rev-parse", "--verify", "-q", NOTES_REF)
    assert read_note(work.path, work.commit()) is None
