"""Export one commit's tree into a fresh directory, like ``git archive | tar x``.

Builds never run in the user's work tree: a build must see exactly the
committed files (not edits in progress) and must not touch the index. The
tree is read straight from the object database with pygit2, so nothing in
the repository changes, not even its ``index`` mtime.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pygit2

from scratchd.errors import GitError
from scratchd.models import CommitInfo

_FILEMODE_LINK = pygit2.enums.FileMode.LINK
_FILEMODE_COMMIT = pygit2.enums.FileMode.COMMIT  # a submodule: exported as an empty dir
_FILEMODE_EXEC = pygit2.enums.FileMode.BLOB_EXECUTABLE


def export_tree(repo_path: str | Path, rev: str, dest: str | Path) -> CommitInfo:
    """Write the tree of ``rev`` (a sha, branch, tag or ``HEAD``) under ``dest``.

    ``dest`` must not exist or be empty. Returns the commit's facts (sha,
    branch, times, message, remote-derived domain/owner/repository).
    """
    repo = _open(repo_path)
    commit = _resolve(repo, rev)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise GitError(f"export destination {dest} is not empty")
    _write_tree(repo, commit.tree, dest)
    return commit_info(repo, commit, rev)


def commit_info(repo: pygit2.Repository, commit: pygit2.Commit, rev: str = "") -> CommitInfo:
    """The facts a build needs about ``commit`` (see :class:`CommitInfo`)."""
    url = _origin_url(repo)
    domain, owner, name = parse_remote(url, _repo_dir(repo))
    return CommitInfo(
        sha=str(commit.id),
        branch=_branch_of(repo, commit, rev),
        repo=name,
        author_time=commit.author.time,
        commit_time=commit.commit_time,
        message=commit.message,
        author=_person(commit.author),
        remote_url=url,
        domain=domain,
        owner=owner,
        repository=name,
    )


def _person(signature: pygit2.Signature) -> str:
    """``Name <email>``; undecodable bytes are replaced, never an error for the build."""
    name = signature.raw_name.decode("utf-8", "replace").strip()
    email = signature.raw_email.decode("utf-8", "replace").strip()
    return f"{name} <{email}>" if email else name


def parse_remote(url: str, local_dir: Path) -> tuple[str, str, str]:
    """``(domain, owner, repository)`` from a remote URL, or the local path.

    Handles ``https://host/owner/repo.git``, ``ssh://git@host:22/owner/repo``
    and scp-like ``git@host:owner/repo.git``. Without a usable URL the
    repository is local: domain ``localhost``, owner its parent directory.
    """
    match = re.match(r"^[a-z+]+://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+)$", url) or re.match(
        r"^(?:[^@/]+@)?([^/:]+):(?!/)(.+)$", url
    )
    if match:
        host, path = match.group(1), match.group(2).strip("/")
        path = path.removesuffix(".git")
        owner, _, name = path.rpartition("/")
        if name:
            return host, owner, name
    name = local_dir.name.removesuffix(".git") or "repository"
    return "localhost", local_dir.parent.name, name


def _open(repo_path: str | Path) -> pygit2.Repository:
    try:
        return pygit2.Repository(str(repo_path))
    except (pygit2.GitError, KeyError) as exc:
        raise GitError(f"{repo_path}: not a git repository ({exc})") from exc


def _resolve(repo: pygit2.Repository, rev: str) -> pygit2.Commit:
    try:
        obj = repo.revparse_single(rev)
        commit = obj.peel(pygit2.Commit)
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise GitError(f"{_repo_dir(repo)}: unknown revision {rev!r}") from exc
    return commit


def _repo_dir(repo: pygit2.Repository) -> Path:
    """The work tree's directory, or a bare repository's own directory."""
    return Path(repo.workdir or repo.path).resolve()


def _origin_url(repo: pygit2.Repository) -> str:
    try:
        return repo.remotes["origin"].url or ""
    except (KeyError, ValueError):
        return ""


def _branch_of(repo: pygit2.Repository, commit: pygit2.Commit, rev: str) -> str:
    """The branch a build of ``rev`` belongs to (wercker's WERCKER_GIT_BRANCH)."""
    if rev in ("HEAD", "") and not repo.head_is_detached and not repo.head_is_unborn:
        return repo.head.shorthand
    branch = repo.lookup_branch(rev)
    if branch is not None:
        return branch.branch_name
    for name in repo.branches.local:
        if repo.branches.local[name].target == commit.id:
            return name
    return ""


def _write_tree(repo: pygit2.Repository, tree: pygit2.Tree, dest: Path) -> None:
    for entry in tree:
        target = dest / str(entry.name)  # only the root tree has no name
        if entry.filemode == pygit2.enums.FileMode.TREE:
            target.mkdir()
            _write_tree(repo, repo[entry.id].peel(pygit2.Tree), target)
        elif entry.filemode == _FILEMODE_COMMIT:
            target.mkdir()
        elif entry.filemode == _FILEMODE_LINK:
            os.symlink(os.fsdecode(repo[entry.id].peel(pygit2.Blob).data), target)
        else:
            target.write_bytes(repo[entry.id].peel(pygit2.Blob).data)
            if entry.filemode == _FILEMODE_EXEC:
                target.chmod(0o755)
