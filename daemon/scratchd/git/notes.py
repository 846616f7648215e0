"""Build results as git notes on the built commit (opt-in ``notes = true``).

This is the one place scratchd writes to a user's repository, and only
under ``refs/notes/scratchd``: ``git log --notes=scratchd`` then shows the
status, build id and image digest next to each commit. A rebuild replaces
the note. libgit2 takes the ref's lock file like git does, so a concurrent
``git`` command makes our update fail rather than corrupt anything; we retry
a few times and then give up with a log line (a missing note never fails a
build).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from pathlib import Path

import pygit2

from scratchd.errors import GitError
from scratchd.git.refs import open_repository

log = logging.getLogger(__name__)

NOTES_REF = "refs/notes/scratchd"
SIGNATURE = ("scratchd", "scratchd@localhost")
ATTEMPTS = 5


def note_text(
    status: str, build_id: int | str, digests: Iterable[str] = (), message: str = ""
) -> str:
    """``scratchd: passed`` / ``build: 7`` / ``image: sha256:...`` lines."""
    lines = [f"scratchd: {status}", f"build: {build_id}"]
    lines += [f"image: {d}" for d in digests]
    if message:
        lines.append(f"message: {message.splitlines()[0]}")
    return "\n".join(lines) + "\n"


def write_note(repo_path: str | Path, sha: str, text: str) -> None:
    """Set the scratchd note of ``sha`` to ``text``; raises :class:`GitError` after retries."""
    signature = pygit2.Signature(*SIGNATURE)
    for attempt in range(1, ATTEMPTS + 1):
        repo = open_repository(repo_path)
        try:
            repo.create_note(text, signature, signature, sha, NOTES_REF, True)
            return
        except pygit2.GitError as exc:
            if attempt == ATTEMPTS:
                raise GitError(f"{repo_path}: cannot write note on {sha}: {exc}") from exc
            time.sleep(0.05 * attempt)  # someone holds the notes ref lock


def read_note(repo_path: str | Path, sha: str) -> str | None:
    """The scratchd note of ``sha``, or None."""
    repo = open_repository(repo_path)
    try:
        return repo.lookup_note(sha, NOTES_REF).message
    except KeyError:
        return None
