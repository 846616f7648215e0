"""The notification outbox: events written with the state change, deliveries for the sender.

Why here and not in ``notify/``: an event must exist if and only if the
status change it reports was committed, whatever code above the store asked
for the change. So every state-changing method of :class:`~scratchd.store.Store`
calls :func:`queued`, :func:`started` or :func:`finished` on its own
connection *inside* its transaction, and a crash can never keep a finished
build without its ``build.finished`` event (or send an event for a change
that was rolled back).

Each event carries a JSON snapshot of the build row at that moment, so a
``build.started`` delivered late still says "running". The derived
``build.broken`` / ``build.fixed`` compare with the branch's previous
*finished* build (passed, failed or error; a cancelled build says nothing
about the code).

The sender side (:class:`OutboxMixin`) turns each event into one delivery
per matching sink (``route``), then takes due deliveries, and records each
outcome in its own short transaction: once :meth:`OutboxMixin.delivered`
has committed, that (event, sink) pair is never sent again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scratchd.store.db import Database

EVENT_TYPES = ("queued", "started", "finished", "broken", "fixed")
_VERDICTS = ("passed", "failed", "error")
_HIDDEN = ("log_path", "work_dir", "cancel_requested", "retry_after")


def queued(conn: sqlite3.Connection, build_ids: Iterable[int], now: float) -> None:
    for build_id in build_ids:
        _insert(conn, "queued", build_id, now)


def started(conn: sqlite3.Connection, build_id: int, now: float) -> None:
    _insert(conn, "started", build_id, now)


def finished(conn: sqlite3.Connection, build_ids: Iterable[int], now: float) -> None:
    """``build.finished`` for each build, plus ``broken``/``fixed`` when the verdict flipped."""
    for build_id in build_ids:
        row = _insert(conn, "finished", build_id, now)
        if row is None or row["status"] not in _VERDICTS:
            continue
        before = conn.execute(
            "SELECT id, sha, status FROM builds WHERE repo=? AND ref=? AND id<?"
            " AND status IN (?,?,?) ORDER BY id DESC LIMIT 1",
            (row["repo"], row["ref"], build_id, *_VERDICTS),
        ).fetchone()
        if before is None:
            continue
        passed_before, passed_now = before["status"] == "passed", row["status"] == "passed"
        if passed_before != passed_now:
            kind = "fixed" if passed_now else "broken"
            _insert(conn, kind, build_id, now, previous=dict(before))


def _insert(
    conn: sqlite3.Connection,
    kind: str,
    build_id: int,
    now: float,
    previous: dict[str, Any] | None = None,
) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM builds WHERE id=?", (build_id,)
    ).fetchone()
    if row is None:
        return None
    snapshot = {k: row[k] for k in row.keys() if k not in _HIDDEN}  # noqa: SIM118 - sqlite3.Row
    snapshot["images"] = json.loads(row["images"] or "[]")
    snapshot["tags"] = json.loads(row["tags"] or "[]")
    conn.execute(
        "INSERT INTO notify_events (event_id, type, build_id, repo, created_at, build, previous)"
        " VALUES (?,?,?,?,?,?,?)",
        (
            f"msg_{_uuid4_hex()}",
            f"build.{kind}",
            build_id,
            row["repo"],
            now,
            json.dumps(snapshot, sort_keys=True),
            json.dumps(previous, sort_keys=True) if previous else None,
        ),
    )
    return row


@dataclass(frozen=True)
class Event:
    """One outbox event as the sender sees it (``build`` is the snapshot dict)."""

    id: int
    event_id: str
    type: str
    build_id: int
    repo: str
    created_at: float
    build: dict[str, Any]
    previous: dict[str, Any] | None

    @property
    def short_type(self) -> str:
        return self.type.removeprefix("build.")

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Event:
        data = {k: row[k] for k in cls.__dataclass_fields__}
        data["build"] = json.loads(data["build"])
        data["previous"] = json.loads(data["previous"]) if data["previous"] else None
        return cls(**data)


@dataclass(frozen=True)
class Delivery:
    """One (event, sink) pair still to deliver."""

    event: Event
    sink: str
    attempts: int
    next_at: float


class OutboxMixin:
    """The sender's queries. ``self.db`` is the store's :class:`Database`."""

    db: Database

    def events(self, *, build_id: int | None = None) -> list[Event]:
        where, params = ("WHERE build_id=?", (build_id,)) if build_id is not None else ("", ())
        rows = self.db.read(f"SELECT * FROM notify_events {where} ORDER BY id", params)  # noqa: S608
        return [Event.from_row(r) for r in rows]

    def route(
        self, sinks_for: Callable[[Event], Iterable[str]], now: float, limit: int = 500
    ) -> int:
        """Give unrouted events one delivery per sink ``sinks_for(event)`` names."""
        if not self.db.read("SELECT 1 FROM notify_events WHERE routed=0 LIMIT 1"):
            return 0  # the common case: no write transaction at all
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT * FROM notify_events WHERE routed=0 ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
            for row in rows:
                event = Event.from_row(row)
                conn.executemany(
                    "INSERT OR IGNORE INTO notify_deliveries (event, sink, next_at) VALUES (?,?,?)",
                    [(event.id, sink, now) for sink in sinks_for(event)],
                )
                conn.execute("UPDATE notify_events SET routed=1 WHERE id=?", (event.id,))
        return len(rows)

    def due_deliveries(self, now: float, limit: int = 100) -> list[Delivery]:
        rows = self.db.read(
            "SELECT e.*, d.sink, d.attempts, d.next_at FROM notify_deliveries d"
            " JOIN notify_events e ON e.id = d.event WHERE d.delivered_at IS NULL"
            " AND d.gave_up_at IS NULL AND d.next_at<=? ORDER BY d.next_at, e.id LIMIT ?",
            (now, limit),
        )
        return [Delivery(Event.from_row(r), r["sink"], r["attempts"], r["next_at"]) for r in rows]

    def next_delivery_at(self) -> float | None:
        rows = self.db.read(
            "SELECT min(next_at) FROM notify_deliveries"
            " WHERE delivered_at IS NULL AND gave_up_at IS NULL"
        )
        at = rows[0][0]
        return None if at is None else float(at)

    def delivered(self, event: int, sink: str, now: float) -> None:
        self._delivery(event, sink, "delivered_at=?, attempts=attempts+1, last_error=NULL", now)

    def retry_later(self, event: int, sink: str, at: float, error: str) -> None:
        self._delivery(event, sink, "next_at=?, attempts=attempts+1, last_error=?", at, error)

    def postpone(self, sink: str, at: float) -> int:
        """Every pending delivery to ``sink`` waits for ``at``, no attempt counted (it is down).

        One statement, not one per event: a dead receiver with a long backlog
        must not cost the database a write per event per round.
        """
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE notify_deliveries SET next_at=? WHERE sink=? AND next_at<?"
                " AND delivered_at IS NULL AND gave_up_at IS NULL",
                (at, sink, at),
            )
        return int(cur.rowcount)

    def gave_up(self, event: int, sink: str, now: float, error: str) -> None:
        self._delivery(event, sink, "gave_up_at=?, attempts=attempts+1, last_error=?", now, error)

    def _delivery(self, event: int, sink: str, assigns: str, *values: object) -> None:
        with self.db.write() as conn:
            conn.execute(
                f"UPDATE notify_deliveries SET {assigns} WHERE event=? AND sink=?"  # noqa: S608
                " AND delivered_at IS NULL AND gave_up_at IS NULL",
                (*values, event, sink),
            )

    def deliveries(self, event: int) -> list[dict[str, Any]]:
        rows = self.db.read("SELECT * FROM notify_deliveries WHERE event=? ORDER BY sink", (event,))
        return [dict(r) for r in rows]

    def prune_outbox(self, before: float) -> int:
        """Forget events older than ``before`` that have nothing left to deliver."""
        with self.db.write() as conn:
            cur = conn.execute(
                "DELETE FROM notify_events WHERE routed=1 AND created_at<? AND NOT EXISTS"
                " (SELECT 1 FROM notify_deliveries d WHERE d.event=notify_events.id"
                " AND d.delivered_at IS NULL AND d.gave_up_at IS NULL)",
                (before,),
            )
        return int(cur.rowcount)


def _uuid4_hex() -> str:
    import uuid  # here, not at the top: it imports platform, and `scratchd builds` never needs it

    return uuid.uuid4().hex
