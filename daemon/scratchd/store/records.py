"""What the store hands out: frozen rows and the state directory layout."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from scratchd.models import BuildStatus, Trigger
from scratchd.store.reader import DB_FILE, build_json


@dataclass(frozen=True)
class BuildRecord:
    """One build, as stored. Times are seconds since the epoch."""

    id: int
    repo: str
    ref: str
    branch: str
    sha: str
    trigger: Trigger
    status: BuildStatus
    attempt: int
    interruptions: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    retry_after: float | None
    cancel_requested: bool
    failed_step: str | None
    message: str | None
    images: tuple[str, ...]  # pushed references / digests, in push order
    log_path: str | None
    work_dir: str | None
    commit_subject: str | None = None  # first line of the commit message
    commit_author: str | None = None
    executor: str | None = None  # "host", "docker", or an engine's name
    seen_at: float | None = None  # when the watcher saw the ref change (trigger latency)
    tags: tuple[str, ...] = ()  # references the image was pushed or stored under (repo:tag)

    @property
    def short_sha(self) -> str:
        return self.sha[:8]

    @property
    def journal_fields(self) -> dict[str, str]:
        """The journal fields of every record about this build (``BUILD_ID`` = its number)."""
        return {
            "REPO": self.repo,
            "BRANCH": self.branch,
            "COMMIT": self.sha,
            "BUILD_ID": str(self.id),
        }

    @property
    def duration(self) -> float | None:
        """Seconds from start to finish (or to ``now`` is the caller's job)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return max(0.0, self.finished_at - self.started_at)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> BuildRecord:
        data = dict(row)
        data["trigger"] = Trigger(data["trigger"])
        data["status"] = BuildStatus(data["status"])
        data["cancel_requested"] = bool(data["cancel_requested"])
        data["images"] = tuple(json.loads(data["images"] or "[]"))
        data["tags"] = tuple(json.loads(data.get("tags") or "[]"))
        return cls(**data)

    @staticmethod
    def row_json(row: sqlite3.Row) -> dict[str, object]:
        """``from_row(row).to_json()`` without making the record: lists of builds on pages.

        A page of 50 builds spent more time building frozen records and
        taking them apart again than in SQLite; this keeps the same shape.
        """
        return build_json(row)

    def to_json(self) -> dict[str, object]:
        """Plain JSON-able dict (``scratchd builds --json``)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["trigger"], out["status"] = str(self.trigger), str(self.status)
        out["images"] = list(self.images)
        out["tags"] = list(self.tags)
        return out


@dataclass(frozen=True)
class DaemonInfo:
    """The daemon's heartbeat row (``scratchd status``)."""

    pid: int
    hostname: str
    started_at: float
    updated_at: float
    status: str
    repos: tuple[str, ...]
    config_path: str

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> DaemonInfo:
        data = dict(row)
        data.pop("id", None)
        data["repos"] = tuple(json.loads(data["repos"] or "[]"))
        return cls(**data)


@dataclass(frozen=True)
class StateDir:
    """Where things live under ``state_dir``; one place so daemon and CLI agree.

    ::

        scratchd.db                     the state database (+ -wal, -shm)
        daemon.lock                     held (flock) by the running daemon
        wake.fifo                       commands ring it to wake the daemon
        logs/<repo>/<id>.log            a running build's log
        logs/<repo>/<id>.log.gz         a finished build's log
        work/<repo>/<id>/               a build's work dir (checkout, output)
        cache/<repo>/                   the cached clone and WERCKER_CACHE_DIR
        oci/                            the OCI layout image store
        engines.json                    the engine pool as placement sees it (a view)
    """

    root: Path

    @property
    def db(self) -> Path:
        return self.root / DB_FILE

    @property
    def engines(self) -> Path:
        """Written by the daemon when it has an engine pool; read by status and the page."""
        return self.root / "engines.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def log_path(self, repo: str, build_id: int) -> Path:
        return self.logs / repo / f"{build_id}.log"

    def work_dir(self, repo: str, build_id: int) -> Path:
        return self.root / "work" / repo / str(build_id)

    def build_files(self, build: BuildRecord) -> list[Path]:
        """Every file or dir a build may have left (for pruning): logs and work dir."""
        log = Path(build.log_path) if build.log_path else self.log_path(build.repo, build.id)
        work = Path(build.work_dir) if build.work_dir else self.work_dir(build.repo, build.id)
        return [log, log.with_name(log.name + ".gz"), work]

    def cache_dir(self, repo: str) -> Path:
        return self.root / "cache" / repo

    @property
    def oci(self) -> Path:
        return self.root / "oci"
