"""Which git refs a repository's ``branches`` and ``tags`` globs select.

One rule, used by the config (``RepoConfig.watches_ref``, ``scratchd trigger``,
``check-config``) and by the watcher (``scratchd.git.refs.read_refs``): were
they two copies, a glob could pass ``check-config`` and yet never wake the
watcher. It lives here, importing nothing of scratchd, so both ``config`` and
``git`` may use it without depending on each other.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

HEADS = "refs/heads/"
TAGS = "refs/tags/"


def glob_match(pattern: str, name: str) -> bool:
    """fnmatch-style, case-sensitive: ``*`` crosses ``/`` (``release/*`` matches
    ``release/1.0/hotfix``), as most people expect from a branch filter."""
    return fnmatch.fnmatchcase(name, pattern)


def ref_matches(ref: str, branches: Iterable[str], tags: Iterable[str] = ()) -> bool:
    """Whether a full ref name (``refs/heads/x``, ``refs/tags/v1``) is a branch or
    tag selected by the globs; any other ref (notes, remotes) never is."""
    if ref.startswith(HEADS):
        short, patterns = ref[len(HEADS) :], branches
    elif ref.startswith(TAGS):
        short, patterns = ref[len(TAGS) :], tags
    else:
        return False
    return any(glob_match(p, short) for p in patterns)


_FORBIDDEN = frozenset(" ~^:?*[\\\x7f") | {chr(c) for c in range(32)}


def valid_ref_name(name: str) -> bool:
    """Whether ``name`` (``refs/heads/x``) is a valid git ref name: git check-ref-format's rules.

    Pure Python rather than ``pygit2.reference_is_valid_name``: the config
    checks every glob of every repository, and importing pygit2 for that cost
    more than the rest of ``scratchd builds`` (tests hold the two to agree).
    """
    if not name or name == "@" or ".." in name or "@{" in name or name.endswith("."):
        return False
    if not _FORBIDDEN.isdisjoint(name):
        return False
    return all(
        part and not part.startswith(".") and not part.endswith(".lock") for part in name.split("/")
    )
