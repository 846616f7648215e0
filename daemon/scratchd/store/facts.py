"""Facts about a build that only the web page and ``/metrics`` read.

The daemon writes them beside the build row as it learns them: the commit's
subject and author once the tree is exported, the executor that ran it, when
the watcher saw the ref change, and what each registry push moved. Every
method is one short write; none changes a build's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scratchd.store.db import Database

PUSH_OUTCOMES = ("uploaded", "existed", "mounted")


class FactsMixin:
    """Mixed into :class:`~scratchd.store.Store` (uses its ``db``)."""

    db: Database

    def set_commit_facts(
        self,
        build_id: int,
        *,
        subject: str | None = None,
        author: str | None = None,
        executor: str | None = None,
        seen_at: float | None = None,
    ) -> None:
        """Record what is known; ``None`` leaves a value as it was. Text is already redacted."""
        with self.db.write() as conn:
            conn.execute(
                "UPDATE builds SET commit_subject=coalesce(?, commit_subject),"
                " commit_author=coalesce(?, commit_author), executor=coalesce(?, executor),"
                " seen_at=coalesce(?, seen_at) WHERE id=?",
                (subject, author, executor, seen_at, build_id),
            )

    def record_push(
        self,
        build_id: int,
        registry: str,
        seconds: float,
        blobs: Mapping[str, tuple[int, int]],
    ) -> None:
        """One push to ``registry``: ``blobs[outcome] = (count, bytes)`` per outcome."""
        unknown = set(blobs) - set(PUSH_OUTCOMES)
        if unknown:
            raise ValueError(f"unknown push outcome(s): {sorted(unknown)}")
        counts = [blobs.get(o, (0, 0)) for o in PUSH_OUTCOMES]
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO pushes (build_id, registry, seconds, uploaded_blobs, uploaded_bytes,"
                " existed_blobs, existed_bytes, mounted_blobs, mounted_bytes)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                (build_id, registry, seconds, *(n for pair in counts for n in pair)),
            )
