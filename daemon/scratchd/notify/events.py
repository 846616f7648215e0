"""An outbox event → the JSON payload, the human message and exec's environment.

The payload is built at delivery time from the event's snapshot (taken by the
store when the status changed) plus the commit's facts from git, which never
change. So a late delivery still reports the build as it was, and the store
never has to read git inside its transaction::

    {"type": "build.finished", "timestamp": "2026-12-01T14:30:00.123Z",
     "data": {"id": 17, "number": 17, "repo": "cities", "branch": "main", ...}}
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime

from scratchd.store.outbox import Event

#: ``(repo, sha) -> {"subject", "author", "email"}``; empty when unknown.
CommitFacts = Callable[[str, str], dict]

_RESULT = {"passed": "passed", "failed": "failed", "error": "error", "cancelled": "cancelled"}


def iso(ts: float | None) -> str | None:
    """Seconds since the epoch → RFC 3339 UTC with milliseconds."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def payload(event: Event, *, web_url: str = "", commit_facts: CommitFacts | None = None) -> dict:
    b = event.build
    facts = _facts(commit_facts, event.repo, b["sha"])
    started, done = b.get("started_at"), b.get("finished_at")
    data = {
        "id": b["id"],
        "number": b["id"],  # the number `scratchd builds` shows
        "attempt": b.get("attempt", 1),
        "repo": event.repo,
        "branch": b["branch"],
        "ref": b["ref"],
        "commit": {"sha": b["sha"], **facts},
        "trigger": b["trigger"],
        "status": b["status"],
        "result": _RESULT.get(b["status"]),
        "failed_step": b.get("failed_step"),
        "message": b.get("message"),
        "queued_at": iso(b.get("created_at")),
        "started_at": iso(started),
        "finished_at": iso(done),
        "duration": round(done - started, 3) if started and done else None,
        "images": list(b.get("images", [])),
        "tags": list(b.get("tags", [])),  # the references pushed or stored (repo:tag)
        "url": f"{web_url}/builds/{b['id']}" if web_url else None,
    }
    if event.previous:
        data["previous"] = dict(event.previous)
    return {"type": event.type, "timestamp": iso(event.created_at), "data": data}


def _facts(lookup: CommitFacts | None, repo: str, sha: str) -> dict:
    facts = {"subject": None, "author": None, "email": None}
    if lookup is not None:
        # A commit gone from the repository must not stop its notification.
        with contextlib.suppress(Exception):
            facts.update(lookup(repo, sha) or {})
    return facts


def human(body: dict) -> tuple[str, str]:
    """``(title, text)`` for people: one line that says what happened, then the facts."""
    d = body["data"]
    what = {
        "build.queued": "queued",
        "build.started": "started",
        "build.finished": d["status"],
        "build.broken": "BROKEN",
        "build.fixed": "fixed",
    }.get(body["type"], body["type"])
    sha = d["commit"]["sha"][:8]
    title = f"{d['repo']} {d['branch']} #{d['id']} {what}"
    lines = [f"{title}: {sha} {d['commit'].get('subject') or ''}".rstrip()]
    if d["commit"].get("author"):
        lines.append(f"by {d['commit']['author']}")
    if d["failed_step"]:
        lines.append(f"failed step: {d['failed_step']}")
    if d["duration"] is not None:
        lines.append(f"took {d['duration']:.1f}s")
    if d["tags"] or d["images"]:
        lines.append("images: " + ", ".join(d["tags"] or d["images"]))
    if d["url"]:
        lines.append(d["url"])
    return title, "\n".join(lines)


def environment(body: dict, event_id: str) -> dict[str, str]:
    """``SCRATCHD_*`` variables for exec sinks (Laminar-style after scripts)."""
    d = body["data"]
    values = {
        "EVENT": body["type"],
        "EVENT_ID": event_id,
        "BUILD_ID": d["id"],
        "REPO": d["repo"],
        "BRANCH": d["branch"],
        "COMMIT": d["commit"]["sha"],
        "COMMIT_SUBJECT": d["commit"].get("subject"),
        "COMMIT_AUTHOR": d["commit"].get("author"),
        "TRIGGER": d["trigger"],
        "STATUS": d["status"],
        "RESULT": d["result"],
        "FAILED_STEP": d["failed_step"],
        "DURATION": d["duration"],
        "IMAGES": " ".join(d["images"]),
        "TAGS": " ".join(d["tags"]),
        "URL": d["url"],
    }
    return {f"SCRATCHD_{k}": str(v) for k, v in values.items() if v not in (None, "")}


def sample_event(repo: str = "example", now: float | None = None) -> Event:
    """What ``scratchd notify test`` sends: a plausible finished build."""
    now = time.time() if now is None else now
    build = {
        "id": 0,
        "attempt": 1,
        "repo": repo,
        "ref": "refs/heads/main",
        "branch": "main",
        "sha": "0" * 40,
        "trigger": "manual",
        "status": "passed",
        "created_at": now - 5,
        "started_at": now - 4,
        "finished_at": now,
        "failed_step": None,
        "message": "test notification from scratchd notify test",
        "images": [],
        "tags": [],
    }
    return Event(0, f"msg_test_{int(now * 1000)}", "build.finished", 0, repo, now, build, None)
