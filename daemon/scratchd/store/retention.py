"""keep_builds: drop old build records, then the files they leave under state_dir."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Protocol

from scratchd.store.records import BuildRecord, StateDir
from scratchd.store.store import PRUNE_BATCH

log = logging.getLogger(__name__)


class Prunable(Protocol):
    """The one store method retention needs (the daemon's worker pool has a narrow store)."""

    def prune(self, repo: str, keep: int, *, batch: int = ...) -> list[BuildRecord]: ...


def prune_builds(
    store: Prunable, state: StateDir, repo: str, keep: int, *, batch: int = PRUNE_BATCH
) -> int:
    """Keep the newest ``keep`` finished builds of ``repo``; returns how many went.

    In batches of ``batch`` rows, each its own short transaction followed by
    its files, so a first prune of a year of history never holds the write
    lock long enough to stall running builds, and memory stays bounded.
    Rows go first, files after: a crash in between leaves stray files, never
    a record whose log is missing. Only paths inside the state directory are
    removed, whatever the database says.
    """
    root = state.root.resolve()
    total = 0
    while True:
        doomed = store.prune(repo, keep, batch=batch)
        for build in doomed:
            for path in state.build_files(build):
                _remove_inside(path, root)
        total += len(doomed)
        if len(doomed) < batch:
            break
    if total:
        log.info("pruned %d old builds of %s", total, repo, extra={"REPO": repo})
    return total


def _remove_inside(path: Path, root: Path) -> None:
    try:
        resolved = path.resolve()
    except OSError:
        return
    if resolved == root or root not in resolved.parents:
        log.warning("not removing %s: outside the state directory %s", path, root)
        return
    if resolved.is_dir() and not resolved.is_symlink():
        shutil.rmtree(resolved, ignore_errors=True)
    else:
        resolved.unlink(missing_ok=True)
