"""Facts about a build that only the web page and ``/metrics`` read.

The daemon writes them beside the build row as it learns them: the commit's
subject and author once the tree is exported, the executor that ran it, when
the watcher saw the ref change, and what each registry push moved. Every
method is one short write; none changes a build's status.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from scratchd.models import PUSH_OUTCOMES, PushFigures

if TYPE_CHECKING:
    from scratchd.store.db import Database

_INSERT_PUSH = (
    "INSERT INTO pushes (build_id, registry, repository, seconds, uploaded_blobs,"
    " uploaded_bytes, existed_blobs, existed_bytes, mounted_blobs, mounted_bytes)"
    " VALUES (?,?,?,?,?,?,?,?,?,?)"
)


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
        repository: str = "",
    ) -> None:
        """One push to ``registry``: ``blobs[outcome] = (count, bytes)`` per outcome."""
        rows = tuple((o, *n) for o, n in blobs.items())
        self.record_pushes(build_id, [PushFigures(registry, repository, seconds, rows)])

    def record_pushes(self, build_id: int, pushes: Sequence[PushFigures]) -> None:
        """Every push of a build, in one transaction (nothing to write: no transaction)."""
        for push in pushes:
            unknown = {o for o, _, _ in push.blobs} - set(PUSH_OUTCOMES)
            if unknown:
                raise ValueError(f"unknown push outcome(s): {sorted(unknown)}")
        if not pushes:
            return
        rows = [
            (
                build_id,
                p.registry,
                p.repository,
                p.seconds,
                *(n for o in PUSH_OUTCOMES for n in p.of(o)),
            )
            for p in pushes
        ]
        with self.db.write() as conn:
            conn.executemany(_INSERT_PUSH, rows)


def _counts(push: PushFigures) -> list[int]:
    """uploaded blobs, bytes, existed blobs, bytes, mounted blobs, bytes: the columns' order."""
    return [n for outcome in PUSH_OUTCOMES for n in push.of(outcome)]
