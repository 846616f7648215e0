"""The daemon's build workers: one thread per claimed build, up to the concurrency limit.

A build reaches this module already ``running`` in the store (the scheduler
claimed it), so everything here ends in exactly one outcome call:
``scheduler.finish`` (passed / failed / error / retry) or, when shutdown cut
it short, ``scheduler.interrupt`` (queued again at the next start). Whatever
goes wrong in between — a missing wercker.yml, an unreadable secrets file,
a bug — becomes that build's outcome and never reaches the other builds.

Output lines reach three places: the build's log file (timestamps, gzip'd
when the build ends), the journal (with REPO/BUILD_ID fields) and the
executor's result. The executor is shared, so lines are routed by build id.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from scratchd.errors import BuildCancelled, PipelineError, ScratchdError
from scratchd.models import BuildStatus, Commit
from scratchd.outcome import decide
from scratchd.ports import (
    BuildExecutor,
    ConfigGetter,
    EngineSlots,
    NotesWriter,
    PoolScheduler,
    PoolStore,
    SourceCheckout,
)
from scratchd.redact import Redactor
from scratchd.store import BuildLog, BuildRecord, StateDir, prune_builds

log = logging.getLogger(__name__)

SHUTDOWN = "daemon stopped"
_OUTCOME_LEVEL = {
    BuildStatus.PASSED: logging.INFO,
    BuildStatus.FAILED: logging.ERROR,
    BuildStatus.ERROR: logging.ERROR,
}


class OutputRouter:
    """The shared executor's line consumer: sends each line to its build's consumers.

    Lines carry the build id the daemon put in the request; a line of a
    build nobody registered (none in practice) is dropped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: dict[str, tuple[Callable, ...]] = {}

    def register(self, build_id: str, *consumers: Callable) -> None:
        with self._lock:
            self._targets[build_id] = consumers

    def unregister(self, build_id: str) -> None:
        with self._lock:
            self._targets.pop(build_id, None)

    def __call__(self, line) -> None:
        with self._lock:
            consumers = self._targets.get(line.build_id, ())
        for consume in consumers:
            consume(line)


@dataclass
class Running:
    """A build in progress: its thread and how to stop it."""

    record: BuildRecord
    thread: threading.Thread
    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str = ""


class WorkerPool:
    """Starts builds on threads and reports each end through ``on_done``.

    Collaborators come in through the constructor: ``executor`` has
    ``run(BuildPlan, cancel, masker) -> BuildOutcome``; ``checkout`` has
    ``export(commit, source, dest) -> CommitInfo``; ``router`` is the
    executor's line consumer (lines go to the build's log file and the
    journal); ``config()`` returns the
    current :class:`~scratchd.config.Config` (it changes on SIGHUP; a build
    keeps the repository settings it started with).
    """

    def __init__(
        self,
        *,
        store: PoolStore,
        scheduler: PoolScheduler,
        executor: BuildExecutor,
        checkout: SourceCheckout,
        state: StateDir,
        config: ConfigGetter,
        router: OutputRouter,
        on_done: Callable[[], None] = lambda: None,
        notes_writer: NotesWriter | None = None,
        new_masker: Callable[[], Redactor] = Redactor,
        engines: EngineSlots | None = None,
    ) -> None:
        self._store, self._scheduler, self._executor = store, scheduler, executor
        self._checkout, self._state, self._config = checkout, state, config
        self._router, self._on_done = router, on_done
        self._notes_writer = notes_writer
        self._new_masker = new_masker  # one per build, made when it starts
        self._engines = engines  # None: docker builds use the local engine
        self._lock = threading.Lock()
        self._running: dict[int, Running] = {}

    # -- control (main loop) -------------------------------------------------

    def start(self, record: BuildRecord) -> None:
        thread = threading.Thread(
            target=self._work, args=(record.id,), name=f"scratchd-build-{record.id}", daemon=True
        )
        with self._lock:
            self._running[record.id] = Running(record, thread)
        thread.start()

    def running(self) -> list[BuildRecord]:
        with self._lock:
            return [r.record for r in self._running.values()]

    def cancel(self, build_id: int, reason: str) -> bool:
        with self._lock:
            run = self._running.get(build_id)
        if run is None or run.cancel.is_set():
            return False
        run.reason = reason
        run.cancel.set()
        return True

    def cancel_all(self, reason: str = SHUTDOWN) -> None:
        for build_id in [r.id for r in self.running()]:
            self.cancel(build_id, reason)

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for all builds; True when none is left."""
        with self._lock:
            threads = [r.thread for r in self._running.values()]
        for thread in threads:
            thread.join(max(0.0, timeout))
        return not self.running()

    # -- one build -------------------------------------------------------------

    def _work(self, build_id: int) -> None:
        run = self._running[build_id]
        record = run.record
        fields = _fields(record)
        path = self._state.log_path(record.repo, record.id)
        work = self._state.work_dir(record.repo, record.id)
        self._store.set_paths(record.id, log_path=path, work_dir=work)
        masker = self._new_masker()
        build_log = BuildLog(path, masker=masker)
        self._router.register(str(record.id), build_log, _journal_consumer(fields, masker))
        log.info("build %s of %s started", record.id, record.short_sha, extra=fields)
        status, digests, message = BuildStatus.ERROR, (), ""
        try:
            status, digests, message = self._build(run, build_log, work, masker)
        except Exception:
            log.exception("build %s: internal error", record.id, extra=fields)
        finally:
            self._router.unregister(str(record.id))
            build_log.line(f"build {status}{': ' + message if message else ''}", "info")
            build_log.finish()
            with self._lock:
                self._running.pop(record.id, None)
            self._after(record, status, digests, message)
            self._on_done()

    def _build(self, run: Running, build_log: BuildLog, work: Path, redactor: Redactor):
        """Run the build; returns (status, digests, message) as recorded."""
        record = run.record
        masker = redactor  # the build's one masker: every sink of this build uses it
        try:
            outcome = self._execute(record, run.cancel, build_log, work, masker)
        except Exception as exc:  # before the executor ran: checkout, wercker.yml, a bug
            if not isinstance(exc, ScratchdError):
                log.exception("build %s crashed", record.id, extra=_fields(record))
            outcome = decide(str(record.id), error=exc, mask=masker.redact)
        # Cut short by the shutdown (not failed on its own): run again at the next start.
        if run.cancel.is_set() and run.reason == SHUTDOWN and outcome.cut_short:
            outcome = outcome.interrupted(SHUTDOWN)
        elif not outcome.passed:
            build_log.line(outcome.reason, "info")
        status = self._scheduler.finish(record, outcome)
        digests = () if status == BuildStatus.INTERRUPTED else outcome.digests
        return status, digests, "" if outcome.passed else outcome.reason

    def _execute(self, record, cancel, build_log, work: Path, masker: Redactor):
        from scratchd.prepare import prepare_build

        config = self._config()
        repo = config.repo(record.repo)
        if repo is None:
            raise PipelineError(f"repository {record.repo} is no longer configured")
        shutil.rmtree(work, ignore_errors=True)  # a retry or a recovered build starts clean
        source = work / "source"
        commit = Commit(record.repo, record.ref, record.sha)
        build_log.line(f"checking out {record.sha} ({record.branch}) of {repo.path}", "info")
        info = self._checkout.export(commit, repo.path, source)
        shown = f"{repo.name}:{repo.pipeline_file}"
        plan = prepare_build(
            source=source,
            pipeline_file=repo.pipeline_file,
            shown=shown,
            missing=f"{shown}: no such file in commit {record.short_sha}",
            commit=info,
            masker=masker,
            secrets_file=repo.secrets_file,
            work_dir=work / "pipelines",
            cache_dir=self._state.cache_dir(repo.name),
            configured=tuple(repo.pipelines),
            executor=config.executor_for(repo),
            build_id=str(record.id),
        )
        if self._engines is not None and plan.executor == "docker":
            return self._on_engine(record, tuple(repo.labels), plan, cancel, build_log, masker)
        return self._executor.run(plan, cancel, masker)

    def _on_engine(self, record, labels, plan, cancel, build_log, masker: Redactor):
        """Hold a slot on an engine of the pool for the whole build (all its pipelines)."""
        assert self._engines is not None
        lease = self._engines.acquire(
            record.repo,
            str(record.id),
            labels,
            cancel=cancel,
            on_wait=lambda why: build_log.line(why, "info"),
        )
        if lease is None:
            raise BuildCancelled("cancelled while waiting for an engine")
        fields = {**_fields(record), "ENGINE": lease.engine}
        log.info("build %s placed on engine %s", record.id, lease.engine, extra=fields)
        build_log.line(f"running on engine {lease.engine}", "info")
        self._router.register(str(record.id), build_log, _journal_consumer(fields, masker))
        outcome = None
        try:
            outcome = self._executor.run(
                replace(plan, executor=f"engine:{lease.engine}"), cancel, masker
            )
            return outcome
        finally:
            self._engines.release(lease, lost=outcome is None or outcome.retryable)

    def _after(self, record: BuildRecord, status, digests, message: str) -> None:
        """Notes, retention: after the outcome is recorded, never able to change it."""
        config = self._config()
        repo = config.repo(record.repo)
        fields = _fields(record)
        level = _OUTCOME_LEVEL.get(status, logging.WARNING)  # `journalctl -p err`: failures
        extra = {**fields, "IMAGE_DIGEST": digests[0]} if digests else fields
        log.log(level, "build %s %s %s", record.id, status, message, extra=extra)
        if repo is None:
            return
        if self._notes_writer and config.notes_for(repo) and BuildStatus(status).finished:
            from scratchd.git.notes import note_text

            try:
                self._notes_writer(
                    repo.path, record.sha, note_text(str(status), record.id, digests, message)
                )
            except ScratchdError as exc:
                log.warning("build %s: no git note: %s", record.id, exc, extra=fields)
        try:
            prune_builds(self._store, self._state, repo.name, config.daemon.keep_builds)
        except ScratchdError as exc:
            log.warning("pruning %s failed: %s", repo.name, exc, extra=fields)


def _journal_consumer(fields: dict[str, str], masker: Redactor) -> Callable:
    from scratchd.journal import output_consumer

    return output_consumer({k: v for k, v in fields.items() if k != "BUILD_ID"}, redactor=masker)


def _fields(b: BuildRecord) -> dict[str, str]:
    return {"REPO": b.repo, "BRANCH": b.branch, "COMMIT": b.sha, "BUILD_ID": str(b.id)}
