"""Reading a watched repository's refs and the commits a ref update brought.

Everything here opens the repository read-only and afresh on each call:
libgit2 caches ``packed-refs`` by mtime and a long-lived handle would also
pin a repository that was deleted and re-created under the same path. The
cost is a few hundred microseconds per scan.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from scratchd.errors import GitError
from scratchd.models import Commit
from scratchd.refglob import ref_matches

log = logging.getLogger(__name__)

#: At most this many commits are reported for one ref update (build_every_commit
#: on a push of a long-lived branch must not queue its whole history).
MAX_COMMITS_PER_UPDATE = 200


@dataclass(frozen=True)
class RefUpdate:
    """One watched ref moved: ``old`` is None for a new ref, ``new`` None when deleted.

    ``commits`` are the commits the update brought, oldest first, following
    first parents and stopping at anything already reachable from ``old``
    (so a force-push reports only the rewritten commits). A new ref reports
    its tip only: a branch seen for the first time is built once, not its
    whole history.
    """

    repo: str
    ref: str
    old: str | None
    new: str | None
    commits: tuple[Commit, ...] = ()

    @property
    def deleted(self) -> bool:
        return self.new is None

    @property
    def created(self) -> bool:
        return self.old is None

    @property
    def tip(self) -> Commit | None:
        return self.commits[-1] if self.commits else None


def open_repository(path: str | Path) -> pygit2.Repository:
    """Open a bare or non-bare repository, or raise :class:`GitError` naming it."""
    try:
        return pygit2.Repository(str(path))
    except (pygit2.GitError, KeyError, OSError) as exc:
        raise GitError(f"{path}: not a readable git repository ({exc})") from exc


def git_dir(path: str | Path) -> Path:
    """The directory holding HEAD, refs/ and packed-refs (``.git`` or the bare repo)."""
    return Path(open_repository(path).path)


def read_refs(
    path: str | Path, branches: Iterable[str], tags: Iterable[str] = ()
) -> dict[str, str]:
    """Map each watched ref to the commit it points at (annotated tags peeled)."""
    branches, tags = tuple(branches), tuple(tags)
    repo = open_repository(path)
    out: dict[str, str] = {}
    try:
        for name in repo.references:
            if not ref_matches(name, branches, tags):
                continue
            sha = _peel(repo, name)
            if sha is not None:
                out[name] = sha
    except pygit2.GitError as exc:
        raise GitError(f"{path}: cannot read refs ({exc})") from exc
    return out


def _peel(repo: pygit2.Repository, name: str) -> str | None:
    """The commit id a ref leads to, or None for a ref to a non-commit or a dangling one."""
    try:
        commit = repo.references[name].peel(pygit2.Commit)
    except (pygit2.GitError, KeyError, ValueError, pygit2.InvalidSpecError):
        log.debug("ignoring ref %s: does not lead to a commit", name)
        return None
    return str(commit.id)


def diff_refs(repo: str, before: Mapping[str, str], after: Mapping[str, str]) -> list[RefUpdate]:
    """Updates (without commits) that turn ``before`` into ``after``, sorted by ref."""
    updates = []
    for ref in sorted(set(before) | set(after)):
        old, new = before.get(ref), after.get(ref)
        if old != new:
            updates.append(RefUpdate(repo, ref, old, new))
    return updates


def with_commits(
    path: str | Path, update: RefUpdate, limit: int = MAX_COMMITS_PER_UPDATE
) -> RefUpdate:
    """``update`` with the commits it brought filled in (see :class:`RefUpdate`)."""
    if update.new is None:
        return update
    repo = open_repository(path)
    try:
        shas = _first_parent_since(repo, update.old, update.new, limit)
        commits = tuple(_commit(repo, update, sha) for sha in shas)
    except (pygit2.GitError, KeyError, ValueError) as exc:
        raise GitError(f"{path}: cannot walk {update.ref} ({exc})") from exc
    return RefUpdate(update.repo, update.ref, update.old, update.new, commits)


def _first_parent_since(
    repo: pygit2.Repository, old: str | None, new: str, limit: int
) -> list[str]:
    """First-parent chain from ``new`` back to what ``old`` reaches, oldest first."""
    if old is None or old not in repo:
        # New ref, or the old tip is gone (force-push then gc): the tip alone.
        return [new]
    walker = repo.walk(new, pygit2.enums.SortMode.TOPOLOGICAL)
    walker.simplify_first_parent()
    walker.hide(old)
    shas: list[str] = []
    for commit in walker:
        if len(shas) == limit:
            log.warning(
                "more than %d new commits on %s; only the newest %d are reported",
                limit,
                new,
                limit,
            )
            break
        shas.append(str(commit.id))
    shas.reverse()
    # Empty: the ref moved back to a commit ``old`` already had (a rewind).
    # The branch now means that commit, so it is reported like a new tip.
    return shas or [new]


def _commit(repo: pygit2.Repository, update: RefUpdate, sha: str) -> Commit:
    return Commit(update.repo, update.ref, sha, repo[sha].peel(pygit2.Commit).commit_time)


def commit_time(path: str | Path, sha: str) -> int:
    """Committer time of ``sha`` (seconds since the epoch), for SOURCE_DATE_EPOCH."""
    repo = open_repository(path)
    try:
        return repo[sha].peel(pygit2.Commit).commit_time
    except (KeyError, ValueError, pygit2.GitError) as exc:
        raise GitError(f"{path}: no commit {sha}") from exc
