"""What each page shows, as plain data: the HTML pages and the JSON API render the same dicts.

Functions here are synchronous (they run in a worker thread) and take
``now`` explicitly, so ETAs and "waiting since" are testable.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from scratchd.errors import BadRequestError
from scratchd.models import BuildStatus, Trigger
from scratchd.store.lock import DaemonLock
from scratchd.store.lock import daemon_alive as store_daemon_alive
from scratchd.store.records import BuildRecord
from scratchd.web.settings import WebSettings
from scratchd.web.state import ReadOnlyState

PAGE = 50
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
BRANCH = re.compile(r"[^\x00-\x1f\x7f]{1,200}")


def daemon_alive(info, state_root: Path) -> bool:
    """The daemon's lock on its state directory is held (an idle daemon writes no row)."""
    try:
        holder = DaemonLock(state_root).holder()
    except OSError:  # the lock file cannot be read: nothing says a daemon runs
        holder = None
    return store_daemon_alive(info, holder)


def running_json(build: BuildRecord, state: ReadOnlyState, now: float) -> dict:
    """A running build with its progress and ETA from the median of recent run times."""
    out = build.to_json()
    elapsed = now - (build.started_at or now)
    recent = state.recent_durations(build.repo)
    eta = statistics.median(recent) if recent else None
    out["elapsed"] = elapsed
    out["expected"] = eta
    out["progress"] = min(0.99, elapsed / eta) if eta else None
    out["eta"] = max(0.0, eta - elapsed) if eta else None
    return out


def status(state: ReadOnlyState, settings: WebSettings, now: float) -> dict:
    """``scratchd status --json`` plus per-repository tiles and executor load."""
    with state.connect():  # one connection and one snapshot for the whole page
        return _status(state, settings, now)


def _status(state: ReadOnlyState, settings: WebSettings, now: float) -> dict:
    info = state.daemon_info()
    alive = daemon_alive(info, state.dirs.root)
    queued, running = state.status_builds("queued"), state.status_builds("running")
    names = [r.name for r in settings.repos]
    names += [n for n in state.repo_names() if n not in names]
    tiles = [tile(state, settings, name, running, now) for name in names]
    executors = {r.executor for r in settings.repos} | {
        settings.executor_of(b.repo) for b in running
    }
    load = [
        {
            "executor": ex,
            "running": sum(settings.executor_of(b.repo) == ex for b in running),
            "capacity": settings.capacity,
        }
        for ex in sorted(executors)
    ]
    load += [
        {
            "executor": f"engine {e['name']}",
            "running": int(e.get("used") or 0),
            "capacity": int(e.get("capacity") or 0),
            "up": bool(e.get("up")),
        }
        for e in state.engines()
    ]
    return {
        "alive": alive,
        "daemon": info.__dict__ if info else None,
        "watched": list(info.repos) if alive and info else [r.name for r in settings.repos],
        "queued": [
            {**b.to_json(), "position": i + 1, "waiting": now - b.created_at}
            for i, b in enumerate(queued)
        ],
        "running": [running_json(b, state, now) for b in running],
        "repos": tiles,
        "executors": load,
        "capacity": settings.capacity,
    }


def tile(state, settings, name: str, running: list[BuildRecord], now: float) -> dict:
    last = state.last_finished(name)
    broken = None
    if last is not None and last.status in (BuildStatus.FAILED, BuildStatus.ERROR):
        since = state.broken_since(name)
        broken = since.to_json() if since else None
    site = settings.repo(name)
    return {
        "repo": name,
        "pipelines": list(site.pipelines) if site else [],
        "configured": site is not None,
        "last": last.to_json() if last else None,
        "broken_since": broken,
        "running": [running_json(b, state, now) for b in running if b.repo == name],
    }


@dataclass(frozen=True)
class BuildFilter:
    """The ``/builds`` query: validated here, so bad input is a 400, never a SQL error."""

    repo: str | None = None
    branch: str | None = None
    status: str | None = None
    trigger: str | None = None
    before: int | None = None  # the cursor: builds with a smaller id
    limit: int = PAGE

    @classmethod
    def parse(cls, query) -> BuildFilter:
        def one(key: str, pattern: re.Pattern | None = None, choices=None) -> str | None:
            value = query.get(key) or None
            if value is None:
                return None
            if (pattern and not pattern.fullmatch(value)) or (choices and value not in choices):
                raise BadRequestError(f"bad value for {key!r}")
            return value

        before, limit = one("before", re.compile(r"\d{1,18}")), one("limit", re.compile(r"\d{1,4}"))
        return cls(
            repo=one("repo", NAME),
            branch=one("branch", BRANCH),
            status=one("status", choices={s.value for s in BuildStatus}),
            trigger=one("trigger", choices={t.value for t in Trigger}),
            before=int(before) if before else None,
            limit=max(1, min(int(limit), 500)) if limit else PAGE,
        )

    def where(self) -> tuple[str, list]:
        clauses, params = [], []
        for column in ("repo", "branch", "status", "trigger"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        if self.before is not None:
            clauses.append("id<?")
            params.append(self.before)
        return ("WHERE " + " AND ".join(clauses) if clauses else ""), params

    def query(self, **changes) -> dict[str, str]:
        values = {k: getattr(self, k) for k in ("repo", "branch", "status", "trigger", "before")}
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v is not None}


def builds(state: ReadOnlyState, flt: BuildFilter) -> dict:
    with state.connect():
        return _builds(state, flt)


def _builds(state: ReadOnlyState, flt: BuildFilter) -> dict:
    where, params = flt.where()
    found = state.builds_json(where, params, limit=flt.limit + 1)
    more = len(found) > flt.limit
    found = found[: flt.limit]
    return {"builds": found, "next": found[-1]["id"] if more and found else None}


def repo(state: ReadOnlyState, settings: WebSettings, name: str, now: float) -> dict | None:
    with state.connect():
        return _repo(state, settings, name)


def _repo(state: ReadOnlyState, settings: WebSettings, name: str) -> dict | None:
    history = state.builds_json("WHERE repo=?", (name,), limit=PAGE)
    if not history and settings.repo(name) is None:
        return None
    passed, finished = state.success_rate(name)
    return {
        "repo": name,
        "branches": state.branch_heads(name),
        "history": history,
        "success_rate": passed / finished if finished else None,
        "finished_considered": finished,
    }
