"""What the daemon's wiring needs of its collaborators, as Protocols.

:class:`~scratchd.service.Service` and :class:`~scratchd.workers.WorkerPool`
only call the methods drawn here, so ``scratchd run`` can hand them the real
SQLite store, scheduler, watcher and executor while unit tests hand them small
in-memory fakes. A Protocol names the *narrow* slice each user needs (the
service never marks a build passed; the pool never claims one), which keeps
the fakes small and shows at a glance who may change what.

Structural, not nominal: the concrete classes do not inherit from these; the
type checker proves they fit where ``cli/run.py`` wires them together.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from scratchd.models import BuildStatus, Commit, CommitInfo, PushFigures, Trigger

if TYPE_CHECKING:
    from scratchd.config import Config
    from scratchd.faults import Condition
    from scratchd.git.watcher import WatchSink, WatchSpec
    from scratchd.outcome import BuildOutcome
    from scratchd.pipeline.buildplan import BuildPlan
    from scratchd.placement import Lease
    from scratchd.redact import Redactor
    from scratchd.scheduler import Policy, Submitted
    from scratchd.store import BuildRecord

# -- the service's collaborators ----------------------------------------------------


class ServiceStore(Protocol):
    """The store as the main loop reads it: change detection, refs, status."""

    def data_version(self) -> int: ...

    def refs(self, repo: str) -> dict[str, str]: ...

    def count_queued(self) -> int: ...

    def heartbeat(
        self,
        status: str,
        repos: Sequence[str] = (),
        *,
        started_at: float,
        config_path: str = "",
        pid: int | None = None,
    ) -> None: ...


class ServiceScheduler(Protocol):
    """Queue policy as the main loop drives it (claims, cancels, reloads)."""

    def recover(self) -> list[BuildRecord]: ...

    def reconfigure(self, policy: Policy) -> None: ...

    def submit(
        self, commits: Sequence[Commit], trigger: Trigger, *, update_ref: bool = True
    ) -> Submitted: ...

    def ref_deleted(self, repo: str, ref: str) -> list[int]: ...

    def repo_removed(self, repo: str) -> list[int]: ...

    def next_jobs(self, repos: Collection[str] | None = None) -> list[BuildRecord]: ...

    def cancellations(self) -> list[BuildRecord]: ...

    def next_wakeup(self, after: float | None = None) -> float | None: ...


class RepoWatcher(Protocol):
    """Finds new commits and reports them to the service (its ``WatchSink``)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def configure(
        self, specs: Iterable[WatchSpec], known: Mapping[str, Mapping[str, str]] | None = None
    ) -> None: ...

    def set_poll_interval(self, seconds: float) -> None: ...

    def repos(self) -> dict[str, bool | None]: ...


class Pool(Protocol):
    """Runs claimed builds; the service starts, cancels and drains them."""

    def start(self, record: BuildRecord) -> None: ...

    def running(self) -> list[BuildRecord]: ...

    def cancel(self, build_id: int, reason: str) -> bool: ...

    def cancel_all(self, reason: str = ...) -> None: ...

    def join(self, timeout: float) -> bool: ...

    def record_pending(self) -> int: ...

    @property
    def disk_full(self) -> Condition: ...


class SystemdNotifier(Protocol):
    """sd_notify: READY/STATUS/RELOADING/STOPPING and the watchdog ping."""

    @property
    def watchdog_interval(self) -> float | None: ...

    def ready(self, status: str | None = None) -> bool: ...

    def status(self, text: str) -> bool: ...

    def watchdog(self) -> bool: ...

    def reloading(self) -> bool: ...

    def stopping(self, status: str | None = None) -> bool: ...


ConfigGetter = Callable[[], "Config"]
WatcherFactory = Callable[["WatchSink"], RepoWatcher]
PoolFactory = Callable[[ConfigGetter, Callable[[], None]], Pool]
ConfigLoader = Callable[[Path], "Config"]
PolicyOf = Callable[["Config"], "Policy"]

# -- the worker pool's collaborators ------------------------------------------------


class PoolStore(Protocol):
    """The store as a worker writes it: where a build's files are, and retention."""

    def set_paths(
        self,
        build_id: int,
        *,
        log_path: Path | str | None = None,
        work_dir: Path | str | None = None,
    ) -> None: ...

    def prune(self, repo: str, keep: int, *, batch: int = ...) -> list[BuildRecord]: ...

    def set_commit_facts(
        self,
        build_id: int,
        *,
        subject: str | None = None,
        author: str | None = None,
        executor: str | None = None,
        seen_at: float | None = None,
    ) -> None: ...

    def record_pushes(self, build_id: int, pushes: Sequence[PushFigures]) -> None: ...


class PoolScheduler(Protocol):
    """How a worker reports the one outcome of its build (see :meth:`Scheduler.finish`)."""

    def finish(self, build: BuildRecord, outcome: BuildOutcome) -> BuildStatus: ...

    def interrupt(self, build: BuildRecord, reason: str = "daemon stopped") -> bool: ...


class PreparedPipeline(Protocol):
    """A first pipeline's container made ahead of its build's slot; ``discard`` removes it."""

    kind: str

    def discard(self) -> None: ...


class BuildExecutor(Protocol):
    """Runs one compiled build's pipelines, honours ``cancel``, masks with ``masker``.

    ``prepare`` gets the first pipeline's container ready while the build
    waits for an engine slot (None: nothing to prepare); ``run`` then uses it.
    """

    def prepare(self, plan: BuildPlan, masker: Redactor) -> PreparedPipeline | None: ...

    def run(
        self,
        plan: BuildPlan,
        cancel: threading.Event,
        masker: Redactor,
        prepared: PreparedPipeline | None = ...,
    ) -> BuildOutcome: ...


class SourceCheckout(Protocol):
    """Exports a commit's tree into a fresh build directory (never the work tree)."""

    def export(self, commit: Commit, source: Path, dest: Path) -> CommitInfo: ...


class EngineSlots(Protocol):
    """Slots on Docker engines of other hosts (:class:`scratchd.placement.Placer`)."""

    def acquire(
        self,
        repo: str,
        build: str,
        required: Iterable[str] = ...,
        *,
        cancel: threading.Event,
        on_wait: Callable[[str], None] = ...,
        on_next: Callable[[str | None], None] = ...,
        poll: float = ...,
    ) -> Lease | None: ...

    def release(self, lease: Lease, *, lost: bool = ...) -> None: ...


NotesWriter = Callable[[Path, str, str], None]
