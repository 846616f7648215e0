"""In-memory stand-ins for the daemon's collaborators (the Protocols in ``scratchd.ports``).

They let unit tests build a :class:`~scratchd.service.Service` or a
:class:`~scratchd.workers.WorkerPool` in microseconds and watch what it asks
of each collaborator. They are a seam only: the real store, scheduler,
watcher and executor are proven by the tests that run ``scratchd run``.

Every fake appends ``(who, what, ...)`` to one shared ``calls`` list, so a
test can assert the *order* in which the service talks to them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from scratchd.config import Config, DaemonConfig, RepoConfig
from scratchd.faults import Condition
from scratchd.models import BuildStatus, Commit, CommitInfo, Trigger
from scratchd.outcome import BuildOutcome
from scratchd.scheduler import Policy, Submitted
from scratchd.store import BuildRecord

Calls = list[tuple[Any, ...]]
WAIT = 5.0  # bound of every wait on another thread; tests finish far sooner


def record(build_id: int, repo: str = "app", sha: str = "", ref: str = "refs/heads/main"):
    """A ``running`` build row as the scheduler's claim hands it out."""
    return BuildRecord(
        id=build_id,
        repo=repo,
        ref=ref,
        branch=ref.removeprefix("refs/heads/"),
        sha=sha or f"{build_id:040x}",
        trigger=Trigger.PUSH,
        status=BuildStatus.RUNNING,
        attempt=1,
        interruptions=0,
        created_at=0.0,
        started_at=0.0,
        finished_at=None,
        retry_after=None,
        cancel_requested=False,
        failed_step=None,
        message=None,
        images=(),
        log_path=None,
        work_dir=None,
    )


def config(tmp: Path, *repos: str, **daemon: Any) -> Config:
    """A loaded-looking config watching ``repos`` (paths under ``tmp``)."""
    settings = {"state_dir": tmp / "state", "executor": "host", **daemon}
    return Config(
        path=tmp / "scratchd.toml",
        daemon=DaemonConfig(**settings),
        repos=tuple(RepoConfig(name, tmp / name) for name in repos),
    )


class FakeStore:
    """The slices of :class:`~scratchd.store.Store` the service and the pool use."""

    def __init__(self, calls: Calls, refs: Mapping[str, dict[str, str]] | None = None) -> None:
        self.calls = calls
        self.version = 1
        self.known = dict(refs or {})
        self.heartbeats: list[str] = []
        self.paths: dict[int, tuple[Path | str | None, Path | str | None]] = {}

    def data_version(self) -> int:
        return self.version

    def refs(self, repo: str) -> dict[str, str]:
        return dict(self.known.get(repo, {}))

    def count_queued(self) -> int:
        return 0

    def heartbeat(self, status: str, repos: Sequence[str] = (), **_kw: Any) -> None:
        self.heartbeats.append(status)

    def set_paths(self, build_id: int, *, log_path=None, work_dir=None) -> None:
        self.paths[build_id] = (log_path, work_dir)

    def set_commit_facts(self, build_id: int, **facts: Any) -> None:
        self.calls.append(("store", "facts", build_id, facts))

    def record_pushes(self, build_id: int, pushes: Sequence[Any]) -> None:
        if pushes:
            self.calls.append(("store", "pushes", build_id, tuple(pushes)))

    def prune(self, repo: str, keep: int, *, batch: int = 200) -> list[BuildRecord]:
        self.calls.append(("store", "prune", repo, keep))
        return []


class FakeScheduler:
    """A queue in a list: ``submit`` queues one build per commit, ``next_jobs`` claims them."""

    def __init__(self, calls: Calls, limit: int = 2) -> None:
        self.calls = calls
        self.limit = limit
        self.queue: list[BuildRecord] = []
        self.cancel_flags: list[BuildRecord] = []
        self.recovered: list[BuildRecord] = []
        self.finished: list[tuple[BuildRecord, BuildOutcome]] = []
        self.interrupted: list[tuple[BuildRecord, str]] = []
        self.policy: Policy | None = None
        self.done = threading.Event()  # set by finish/interrupt
        self._ids = 100

    def recover(self) -> list[BuildRecord]:
        self.calls.append(("scheduler", "recover"))
        return list(self.recovered)

    def reconfigure(self, policy: Policy) -> None:
        self.calls.append(("scheduler", "reconfigure", policy))
        self.policy = policy

    def submit(
        self, commits: Sequence[Commit], trigger: Trigger, *, update_ref: bool = True
    ) -> Submitted:
        self.calls.append(("scheduler", "submit", tuple(commits), trigger, update_ref))
        queued = []
        for c in commits:
            self._ids += 1
            queued.append(record(self._ids, c.repo, c.sha, c.ref))
        self.queue += queued
        return Submitted(tuple(queued))

    def ref_deleted(self, repo: str, ref: str) -> list[int]:
        self.calls.append(("scheduler", "ref_deleted", repo, ref))
        return []

    def repo_removed(self, repo: str) -> list[int]:
        self.calls.append(("scheduler", "repo_removed", repo))
        return []

    def next_jobs(self, repos: Collection[str] | None = None) -> list[BuildRecord]:
        jobs = [b for b in self.queue if repos is None or b.repo in repos][: self.limit]
        self.queue = [b for b in self.queue if b not in jobs]
        return jobs

    def cancellations(self) -> list[BuildRecord]:
        flags, self.cancel_flags = self.cancel_flags, []
        return flags

    def next_wakeup(self, after: float | None = None) -> float | None:
        return None

    def finish(self, build: BuildRecord, outcome: BuildOutcome) -> BuildStatus:
        """Record the outcome; an INTERRUPTED one is the daemon's shutdown cutting it short."""
        self.finished.append((build, outcome))
        if outcome.status == BuildStatus.INTERRUPTED:
            self.interrupted.append((build, outcome.message))
        self.done.set()
        return outcome.status

    def interrupt(self, build: BuildRecord, reason: str = "daemon stopped") -> bool:
        self.interrupted.append((build, reason))
        self.done.set()
        return True


class FakeWatcher:
    """Records what it was told to watch; the test plays the scanner through ``sink``."""

    def __init__(self, sink: Any, calls: Calls) -> None:
        self.sink, self.calls = sink, calls
        self.specs: list[str] = []
        self.poll_interval: float | None = None

    def start(self) -> None:
        self.calls.append(("watcher", "start"))

    def stop(self) -> None:
        self.calls.append(("watcher", "stop"))

    def configure(self, specs: Iterable[Any], known: Mapping[str, Any] | None = None) -> None:
        self.specs = [s.name for s in specs]
        self.calls.append(("watcher", "configure", tuple(self.specs), dict(known or {})))

    def set_poll_interval(self, seconds: float) -> None:
        self.poll_interval = seconds

    def repos(self) -> dict[str, bool | None]:
        return dict.fromkeys(self.specs, True)


class FakePool:
    """Builds that 'run' until the test finishes them (or cancel() does, if ``obedient``)."""

    def __init__(self, calls: Calls, on_done: Any, *, obedient: bool = True) -> None:
        self.calls, self.on_done, self.obedient = calls, on_done, obedient
        self.active: dict[int, BuildRecord] = {}
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.disk_full = Condition(logging.getLogger(__name__), "disk full")

    def start(self, record: BuildRecord) -> None:
        self.calls.append(("pool", "start", record.id))
        with self.lock:
            self.active[record.id] = record
        self.started.set()

    def running(self) -> list[BuildRecord]:
        with self.lock:
            return list(self.active.values())

    def cancel(self, build_id: int, reason: str) -> bool:
        self.calls.append(("pool", "cancel", build_id, reason))
        if self.obedient:
            self.end(build_id)
        return True

    def cancel_all(self, reason: str = "daemon stopped") -> None:
        self.calls.append(("pool", "cancel_all", reason))
        for build_id in [r.id for r in self.running()]:
            self.end(build_id)

    def record_pending(self) -> int:
        return 0

    def join(self, timeout: float) -> bool:
        return not self.running()

    def end(self, build_id: int) -> None:
        with self.lock:
            self.active.pop(build_id, None)
        self.on_done()


class FakeNotifier:
    """sd_notify without a socket: the messages, in order."""

    def __init__(self, calls: Calls, watchdog_interval: float | None = None) -> None:
        self.calls = calls
        self.watchdog_interval = watchdog_interval
        self.pinged = threading.Event()

    def ready(self, status: str | None = None) -> bool:
        self.calls.append(("notify", "ready", status))
        return True

    def status(self, text: str) -> bool:
        return True

    def watchdog(self) -> bool:
        self.pinged.set()
        return True

    def reloading(self) -> bool:
        self.calls.append(("notify", "reloading"))
        return True

    def stopping(self, status: str | None = None) -> bool:
        self.calls.append(("notify", "stopping", status))
        return True


class FakeCheckout:
    """Exports a commit by writing ``files`` into the build directory."""

    def __init__(self, files: Mapping[str, str]) -> None:
        self.files = dict(files)
        self.exported: list[tuple[Commit, Path]] = []

    def export(self, commit: Commit, source: Path, dest: Path) -> CommitInfo:
        dest.mkdir(parents=True)
        for name, text in self.files.items():
            (dest / name).write_text(text)
        self.exported.append((commit, source))
        branch = commit.ref.removeprefix("refs/heads/")
        return CommitInfo(commit.sha, branch=branch, repo=commit.repo)


def replace_daemon(cfg: Config, **changes: Any) -> Config:
    return dataclasses.replace(cfg, daemon=dataclasses.replace(cfg.daemon, **changes))
