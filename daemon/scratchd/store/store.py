"""The durable state of scratchd: builds (the queue), last-seen refs, heartbeat.

Every state change is one transaction with a guard on the current status
(``UPDATE ... WHERE status = 'running'``), so a late or repeated call cannot
resurrect a finished build, and nothing but :meth:`Store.mark_passed` on a
*running* build ever writes ``passed``. Callers mask a build's own secrets
in messages before passing them in; the store's ``masker`` (the daemon's, with
every registry password it can read) masks each message once more on write.
Each status change also writes its notification events
(:mod:`scratchd.store.outbox`) in the same transaction.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scratchd.models import BuildStatus, Commit, Trigger
from scratchd.store import outbox
from scratchd.store.db import Database
from scratchd.store.facts import FactsMixin
from scratchd.store.heartbeat import HeartbeatMixin
from scratchd.store.outbox import OutboxMixin
from scratchd.store.reader import WITH_DIGEST, builds_query
from scratchd.store.records import BuildRecord
from scratchd.store.refs import RefsMixin, set_ref_in

if TYPE_CHECKING:
    from scratchd.redact import Masker

Q, R = BuildStatus.QUEUED.value, BuildStatus.RUNNING.value
FINISHED = tuple(s.value for s in BuildStatus if s.finished)
PRUNE_BATCH = 200  # rows per retention transaction: milliseconds of write lock, not seconds


class Store(RefsMixin, HeartbeatMixin, OutboxMixin, FactsMixin):
    """All reads and writes of the state database. Safe across threads and processes."""

    def __init__(
        self,
        path: Path,
        *,
        create: bool = True,
        busy_timeout: float = 30.0,
        masker: Masker | None = None,
    ) -> None:
        self.db = Database(path, create=create, busy_timeout=busy_timeout)
        self.path = self.db.path
        self._masker = masker  # a scratchd.redact.Masker, or None: messages as given

    def _masked(self, message: str) -> str:
        return self._masker.redact(message) if self._masker is not None and message else message

    def close(self) -> None:
        self.db.close()

    def data_version(self) -> int:
        """Changes whenever *another* connection commits: a cheap "anything new?" poll."""
        version: int = self.db.read("PRAGMA data_version")[0][0]
        return version

    def integrity_check(self) -> str:
        """``"ok"`` when SQLite finds the file sound."""
        return "; ".join(r[0] for r in self.db.read("PRAGMA integrity_check"))

    # -- queueing -----------------------------------------------------------

    def enqueue(
        self,
        commits: Sequence[Commit],
        trigger: Trigger,
        *,
        coalesce: bool = False,
        update_ref: bool = True,
        now: float | None = None,
    ) -> list[BuildRecord]:
        """Queue builds of ``commits`` (oldest first) in one transaction.

        A commit already queued on the same ref is not queued twice. With
        ``coalesce`` only the newest queued build of each ref stays queued; the
        others become cancelled "superseded by <sha>". With ``update_ref`` the
        last-seen sha of each ref moves to its newest commit in the same
        transaction, so a crash can never record a ref as seen without its job.
        """
        now = time.time() if now is None else now
        ids: list[int] = []
        new: list[int] = []
        with self.db.write(urgent=True) as conn:
            for c in commits:
                row = conn.execute(
                    "SELECT id FROM builds WHERE repo=? AND ref=? AND sha=? AND status=?",
                    (c.repo, c.ref, c.sha, Q),
                ).fetchone()
                if row is None:
                    row = conn.execute(
                        "INSERT INTO builds (repo, ref, branch, sha, trigger, status, created_at,"
                        " seen_at) VALUES (?,?,?,?,?,?,?,?) RETURNING id",
                        (c.repo, c.ref, c.branch, c.sha, str(trigger), Q, now, c.seen_at),
                    ).fetchone()
                    new.append(row[0])
                ids.append(row[0])
            outbox.queued(conn, new, now)
            newest = {(c.repo, c.ref): c for c in commits}
            for (repo, ref), c in newest.items():
                if coalesce:
                    rows = conn.execute(
                        "UPDATE builds SET status='cancelled', finished_at=?, message=?"
                        " WHERE repo=? AND ref=? AND status=? AND sha<>? RETURNING id",
                        (now, f"superseded by {c.sha}", repo, ref, Q, c.sha),
                    ).fetchall()
                    outbox.finished(conn, sorted(r[0] for r in rows), now)
                if update_ref:
                    set_ref_in(conn, repo, ref, c.sha, now)
        return [b for b in (self.get(i) for i in dict.fromkeys(ids)) if b is not None]

    def claim_next(
        self,
        *,
        max_running: int,
        repos: Collection[str] | None = None,
        one_per_ref: bool = True,
        now: float | None = None,
    ) -> BuildRecord | None:
        """Atomically move the next runnable queued build to ``running``.

        Runnable: its ``retry_after`` has passed, fewer than ``max_running``
        builds run in total, and (``one_per_ref``) nothing runs on its ref and
        it is the oldest queued build there, so commits build in order.
        ``repos`` limits the choice to the configured repositories.
        """
        now = time.time() if now is None else now
        sql = "SELECT id FROM builds b WHERE status=? AND (retry_after IS NULL OR retry_after<=?)"
        params: list[object] = [Q, now]
        if one_per_ref:
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM builds r WHERE r.status=? AND r.repo=b.repo"
                " AND r.ref=b.ref) AND b.id=(SELECT min(id) FROM builds q WHERE q.status=?"
                " AND q.repo=b.repo AND q.ref=b.ref)"
            )
            params += [R, Q]
        # The repository filter is applied to the few queued rows here, not as
        # ``repo IN (?, ...)``: binding 1,000 configured names cost over a
        # millisecond per claim, on the path from a commit to its build.
        allowed = None if repos is None else frozenset(repos)
        with self.db.write(urgent=True) as conn:
            running = conn.execute("SELECT count(*) FROM builds WHERE status=?", (R,)).fetchone()
            if running[0] >= max_running:
                return None
            rows = conn.execute(
                sql.replace("SELECT id", "SELECT id, repo", 1) + " ORDER BY id", params
            )
            row = next((r for r in rows if allowed is None or r[1] in allowed), None)
            if row is None:
                return None
            conn.execute(
                "UPDATE builds SET status=?, started_at=?, finished_at=NULL, retry_after=NULL"
                " WHERE id=?",
                (R, now, row[0]),
            )
            outbox.started(conn, row[0], now)
        return self.get(row[0])

    def next_retry_at(self, after: float | None = None) -> float | None:
        """Earliest ``retry_after`` of a queued build (later than ``after``, if given)."""
        rows = self.db.read(
            "SELECT min(retry_after) FROM builds WHERE status=? AND retry_after>?",
            (Q, float("-inf") if after is None else after),
        )
        earliest: float | None = rows[0][0]
        return earliest

    # -- outcomes -------------------------------------------------------------

    def mark_passed(
        self,
        build_id: int,
        images: Sequence[str] = (),
        now: float | None = None,
        *,
        tags: Sequence[str] = (),
        platforms: Sequence[str] = (),
    ) -> bool:
        """The only way to ``passed``: from ``running`` and nowhere else.

        ``images`` are the digests, ``tags`` the references they went to (repo:tag),
        ``platforms`` the platform manifests inside pushed indexes; every digest is
        indexed for :meth:`builds_with_digest`, in the same transaction.
        """
        digests = [(d, "image") for d in images] + [(d, "platform") for d in platforms]
        return self._finish(
            build_id,
            BuildStatus.PASSED,
            (R,),
            now,
            digests=digests,
            images=json.dumps(list(images)),
            tags=json.dumps(list(tags)),
        )

    def mark_failed(
        self, build_id: int, message: str, failed_step: str | None = None, now: float | None = None
    ) -> bool:
        return self._finish(
            build_id, BuildStatus.FAILED, (R,), now, message=message, failed_step=failed_step
        )

    def mark_error(
        self, build_id: int, message: str, failed_step: str | None = None, now: float | None = None
    ) -> bool:
        return self._finish(
            build_id, BuildStatus.ERROR, (R, Q), now, message=message, failed_step=failed_step
        )

    def mark_cancelled(
        self, build_id: int, message: str | None = None, now: float | None = None
    ) -> bool:
        """Queued or running → cancelled; ``message=None`` keeps the cancel request's reason."""
        if message is None:
            return self._finish(build_id, BuildStatus.CANCELLED, (Q, R), now)
        return self._finish(build_id, BuildStatus.CANCELLED, (Q, R), now, message=message)

    def mark_interrupted(
        self, build_id: int, message: str = "interrupted", now: float | None = None
    ) -> bool:
        """Running → interrupted (shutdown, crash found at start); re-queued by recovery."""
        return self._finish(build_id, BuildStatus.INTERRUPTED, (R,), now, message=message)

    def requeue(self, build_id: int, retry_after: float, message: str) -> bool:
        """Running → queued again for attempt + 1, not before ``retry_after``."""
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE builds SET status=?, attempt=attempt+1, retry_after=?, message=?,"
                " started_at=NULL, cancel_requested=0 WHERE id=? AND status=?",
                (Q, retry_after, self._masked(message), build_id, R),
            )
        return cur.rowcount == 1

    def _finish(
        self,
        build_id: int,
        status: BuildStatus,
        allowed: Sequence[str],
        now: float | None,
        digests: Sequence[tuple[str, str]] = (),
        **columns: object,
    ) -> bool:
        now = time.time() if now is None else now
        columns = {"status": str(status), "finished_at": now, **columns}
        if columns.get("message"):
            columns["message"] = self._masked(str(columns["message"]))
        assigns = ", ".join(f"{k}=?" for k in columns)
        marks = ",".join("?" * len(allowed))
        with self.db.write() as conn:
            cur = conn.execute(
                f"UPDATE builds SET {assigns} WHERE id=? AND status IN ({marks})",  # noqa: S608
                (*columns.values(), build_id, *allowed),
            )
            if cur.rowcount == 1 and status.finished:
                outbox.finished(conn, [build_id], now)
            if cur.rowcount == 1 and digests:
                conn.executemany(
                    "INSERT INTO image_digests (digest, build_id, kind) VALUES (?, ?, ?)",
                    [(digest, build_id, kind) for digest, kind in digests],
                )
        return cur.rowcount == 1

    def set_paths(
        self,
        build_id: int,
        *,
        log_path: Path | str | None = None,
        work_dir: Path | str | None = None,
    ) -> None:
        """Record where a build's log and work dir are (``None`` leaves a value as it was)."""
        values = [None if v is None else str(v) for v in (log_path, work_dir)]
        with self.db.write() as conn:
            conn.execute(
                "UPDATE builds SET log_path=coalesce(?, log_path), work_dir=coalesce(?, work_dir)"
                " WHERE id=?",
                (*values, build_id),
            )

    # -- cancellation -------------------------------------------------------

    def request_cancel(self, build_id: int, reason: str = "cancelled by user") -> BuildRecord:
        """Queued → cancelled now; running → flagged for the daemon. Returns the new state."""
        now = time.time()
        with self.db.write() as conn:
            rows = conn.execute(
                "UPDATE builds SET status='cancelled', finished_at=?, message=?"
                " WHERE id=? AND status IN (?, 'interrupted') RETURNING id",
                (now, reason, build_id, Q),
            ).fetchall()
            outbox.finished(conn, [r[0] for r in rows], now)
            conn.execute(
                "UPDATE builds SET cancel_requested=1, message=? WHERE id=? AND status=?",
                (reason, build_id, R),
            )
        record = self.get(build_id)
        if record is None:
            from scratchd.errors import UnknownBuildError

            raise UnknownBuildError(f"no build with id {build_id}")
        return record

    def cancel_superseded(self, repo: str, ref: str, sha: str) -> list[BuildRecord]:
        """Flag running builds of ``ref`` at another commit: ``sha`` replaces them."""
        with self.db.write() as conn:
            rows = conn.execute(
                "UPDATE builds SET cancel_requested=1, message=? WHERE repo=? AND ref=?"
                " AND status=? AND sha<>? AND cancel_requested=0 RETURNING id",
                (f"superseded by {sha}", repo, ref, R, sha),
            ).fetchall()
        return [b for b in (self.get(r[0]) for r in rows) if b]

    def cancel_requests(self) -> list[BuildRecord]:
        """Running builds someone asked to cancel (the daemon polls this)."""
        return self._builds("WHERE status=? AND cancel_requested=1 ORDER BY id", (R,))

    # -- start-up recovery, branch deletion, retention ----------------------

    def recover_interrupted(self, now: float | None = None) -> list[BuildRecord]:
        """At daemon start: builds left running/interrupted are queued again, once.

        Only the single daemon may call this (a ``running`` row of a live
        daemon is not interrupted). A build interrupted a second time becomes
        ``error`` so a build that crashes the daemon cannot loop forever.
        """
        now = time.time() if now is None else now
        with self.db.write() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM builds WHERE status IN (?, 'interrupted') ORDER BY id", (R,)
                )
            ]
            given_up = conn.execute(
                "UPDATE builds SET status='error', finished_at=?, cancel_requested=0,"
                " message='interrupted again after a restart; not retried'"
                " WHERE status IN (?, 'interrupted') AND interruptions>0 RETURNING id",
                (now, R),
            ).fetchall()
            outbox.finished(conn, sorted(r[0] for r in given_up), now)
            conn.execute(
                "UPDATE builds SET status=?, interruptions=interruptions+1, attempt=attempt+1,"
                " started_at=NULL, finished_at=NULL, retry_after=NULL, cancel_requested=0,"
                " message='interrupted; queued again' WHERE status IN (?, 'interrupted')",
                (Q, R),
            )
        return [b for b in (self.get(i) for i in ids) if b]

    def drop_ref(self, repo: str, ref: str, message: str = "branch deleted") -> list[int]:
        """The ref is gone: cancel its queued builds and forget its last-seen sha."""
        now = time.time()
        with self.db.write() as conn:
            rows = conn.execute(
                "UPDATE builds SET status='cancelled', finished_at=?, message=?"
                " WHERE repo=? AND ref=? AND status=? RETURNING id",
                (now, message, repo, ref, Q),
            ).fetchall()
            outbox.finished(conn, sorted(r[0] for r in rows), now)
            conn.execute("DELETE FROM refs WHERE repo=? AND ref=?", (repo, ref))
        return sorted(r[0] for r in rows)

    def cancel_queued(self, repo: str, message: str) -> list[int]:
        """Cancel every queued build of ``repo`` (it left the config).

        Its last-seen refs stay, so adding the repository back builds what
        changed meanwhile instead of rebuilding every branch tip.
        """
        now = time.time()
        with self.db.write() as conn:
            rows = conn.execute(
                "UPDATE builds SET status='cancelled', finished_at=?, message=?"
                " WHERE repo=? AND status=? RETURNING id",
                (now, message, repo, Q),
            ).fetchall()
            outbox.finished(conn, sorted(r[0] for r in rows), now)
        return sorted(r[0] for r in rows)

    def prune(self, repo: str, keep: int, *, batch: int = PRUNE_BATCH) -> list[BuildRecord]:
        """Delete up to ``batch`` finished builds of ``repo`` beyond the newest ``keep``.

        One short transaction per call: a year of history pruned at once
        would hold the write lock for seconds and stall every build that
        wants to record a step, so callers loop until fewer than ``batch``
        come back (:func:`~scratchd.store.retention.prune_builds`). Returns
        the deleted records so the caller removes their log files and work
        dirs (after the commit: a crash leaves stray files, never rows
        pointing at missing files that matter).
        """
        marks = ",".join("?" * len(FINISHED))
        where = f"WHERE repo=? AND status IN ({marks}) ORDER BY id DESC LIMIT ? OFFSET ?"
        with self.db.write() as conn:
            rows = conn.execute(f"SELECT * FROM builds {where}", (repo, *FINISHED, batch, keep))  # noqa: S608
            doomed = [BuildRecord.from_row(r) for r in rows.fetchall()]
            conn.executemany("DELETE FROM builds WHERE id=?", [(b.id,) for b in doomed])
            ids = [b.id for b in doomed]  # their digests go with them
            conn.execute(
                f"DELETE FROM image_digests WHERE build_id IN ({','.join('?' * len(ids))})",  # noqa: S608
                ids,
            )
        return doomed

    # -- reading --------------------------------------------------------------

    def get(self, build_id: int) -> BuildRecord | None:
        found = self._builds("WHERE id=?", (build_id,))
        return found[0] if found else None

    def list_builds(
        self,
        *,
        repo: str | None = None,
        ref: str | None = None,
        statuses: Collection[str] | None = None,
        limit: int | None = None,
    ) -> list[BuildRecord]:
        """Newest first."""
        sql, params = builds_query(repo=repo, ref=ref, statuses=statuses, limit=limit)
        return self._builds(sql, params)

    def builds_with_digest(self, digest: str) -> list[BuildRecord]:
        """The passed builds that pushed ``digest`` (an index or a platform manifest), newest first.

        A reproducible image has the same digest for every build of its commit,
        so there may be several; each one made exactly these bytes.
        """
        return self._builds(WITH_DIGEST, (digest,))

    def count_queued(self) -> int:
        """How many builds wait (the status line): a count off the index, no rows loaded."""
        count: int = self.db.read("SELECT count(*) FROM builds WHERE status=?", (Q,))[0][0]
        return count

    def queued(self) -> list[BuildRecord]:
        return self._builds("WHERE status=? ORDER BY id", (Q,))

    def running(self) -> list[BuildRecord]:
        return self._builds("WHERE status=? ORDER BY id", (R,))

    def _builds(self, where: str, params: Sequence[object]) -> list[BuildRecord]:
        rows = self.db.read(f"SELECT * FROM builds {where}", params)  # noqa: S608
        return [BuildRecord.from_row(r) for r in rows]
