"""A commit's tree in a fresh build directory, via a cached mirror of the repository.

Builds read from a bare mirror kept under the state directory, never from
the user's repository directly: the user's repository is only ever *read*
(by a local fetch), and a build that runs while the user rewrites history or
runs ``git gc`` still finds its commit, because the mirror never prunes.

The mirror is fetched only when the wanted commit is missing, so a burst of
builds of one push costs one fetch. The usual case, one new commit on top of
what the mirror has, is not even a fetch: its few new objects are copied
from the source's object database (see :func:`_copy_commit`). A mirror left half-written by a crash
(stale lock files, a broken pack) is thrown away and cloned again: it holds
nothing that the source does not.
"""

from __future__ import annotations

import logging
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pygit2

from scratchd.errors import GitError
from scratchd.git.export import export_tree
from scratchd.models import Commit, CommitInfo

log = logging.getLogger(__name__)

REFSPECS = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]


class Checkout:
    """Keeps one bare mirror per repository under ``root`` (``<root>/<name>.git``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    def mirror_path(self, name: str) -> Path:
        return self.root / f"{name}.git"

    def export(self, commit: Commit, source: Path, dest: Path) -> CommitInfo:
        """Write ``commit``'s tree into ``dest`` (must not exist or be empty).

        ``source`` is the configured repository. The returned facts carry the
        commit's own branch (the ref it was built for) and configured name.
        """
        mirror = self.ensure(commit.repo, source, commit.sha)
        info = export_tree(mirror, commit.sha, dest)
        return replace(info, branch=commit.branch, repo=commit.repo)

    def ensure(self, name: str, source: Path, sha: str) -> Path:
        """The mirror of ``source``, fetched if it does not have ``sha`` yet."""
        with self._lock(name):
            path = self.mirror_path(name)
            if _has_commit(path, sha) or _copy_commit(path, source, sha):
                return path
            try:
                self._fetch(path, source)
            except pygit2.GitError as exc:
                log.warning(
                    "mirror %s unusable (%s); cloning it again", path, exc, extra={"REPO": name}
                )
                shutil.rmtree(path, ignore_errors=True)
                self._fetch_or_raise(path, source)
            if not _has_commit(path, sha):
                raise GitError(f"{name}: commit {sha} is not in {source}")
            return path

    def _fetch_or_raise(self, path: Path, source: Path) -> None:
        try:
            self._fetch(path, source)
        except pygit2.GitError as exc:
            raise GitError(f"cannot fetch {source} into {path}: {exc}") from exc

    def _fetch(self, path: Path, source: Path) -> None:
        if not Path(source).exists():
            raise GitError(f"repository {source} does not exist")
        repo = _open_or_init(path, source)
        repo.remotes["origin"].fetch(REFSPECS, prune=pygit2.enums.FetchPrune.NO_PRUNE)

    def _lock(self, name: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(name, threading.Lock())


def _open_or_init(path: Path, source: Path) -> pygit2.Repository:
    """The bare mirror at ``path`` with ``origin`` pointing at ``source``."""
    url = str(Path(source).resolve())
    if (path / "HEAD").exists():
        repo = pygit2.Repository(str(path))
        if repo.remotes["origin"].url != url:  # the config moved the repository
            repo.remotes.set_url("origin", url)
        return repo
    path.parent.mkdir(parents=True, exist_ok=True)
    repo = pygit2.init_repository(str(path), bare=True)
    repo.remotes.create("origin", url, REFSPECS[0])
    return repo


def _has_commit(path: Path, sha: str) -> bool:
    if not (path / "HEAD").exists():
        return False
    try:
        repo = pygit2.Repository(str(path))
        return isinstance(repo.get(sha), pygit2.Commit)
    except (pygit2.GitError, ValueError, KeyError):
        return False


def _copy_commit(path: Path, source: Path, sha: str) -> bool:
    """Copy ``sha`` into the mirror object by object, if the mirror has its parents.

    A local fetch builds, writes and indexes a pack: about 15 ms for one new
    commit of a three-file repository, most of a build's checkout. Copying
    the commit's missing objects takes about one. Children are written before
    their parents, so an object present in the mirror always has everything
    below it there too (a crash half-way leaves only unreferenced objects).
    False, having copied nothing that matters, when the mirror is missing or
    lacks a parent (several new commits: one fetch is better), or on any
    error; the caller then fetches as before. Refs are not moved: builds
    name commits by sha, and the next fetch brings the branches up to date.
    """
    if not (path / "HEAD").exists():
        return False
    try:
        mirror = pygit2.Repository(str(path))
        origin = pygit2.Repository(str(source))
        commit = origin.get(sha)
        if not isinstance(commit, pygit2.Commit):
            return False
        if not all(parent in mirror for parent in commit.parent_ids):
            return False
        _copy_tree(origin, mirror, commit.tree)
        mirror.odb.write(*origin.odb.read(commit.id))
    except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
        log.debug("copying %s into %s failed (%s); fetching instead", sha, path, exc)
        return False
    return True


def _copy_tree(origin: pygit2.Repository, mirror: pygit2.Repository, tree: pygit2.Tree) -> None:
    if tree.id in mirror:
        return  # and, by the write order, everything below it
    for entry in tree:
        if entry.filemode == pygit2.enums.FileMode.TREE:
            _copy_tree(origin, mirror, origin[entry.id].peel(pygit2.Tree))
        elif entry.filemode != pygit2.enums.FileMode.COMMIT and entry.id not in mirror:
            mirror.odb.write(*origin.odb.read(entry.id))  # a submodule's commit is not ours
    mirror.odb.write(*origin.odb.read(tree.id))
