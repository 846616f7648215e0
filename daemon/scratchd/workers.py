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
from scratchd.faults import Condition, Reserve, is_disk_full, low_on_space
from scratchd.models import BuildStatus, Commit
from scratchd.outcome import BuildOutcome, decide
from scratchd.ports import (
    BuildExecutor,
    ConfigGetter,
    EngineSlots,
    NotesWriter,
    PoolScheduler,
    PoolStore,
    PreparedPipeline,
    SourceCheckout,
)
from scratchd.redact import Redactor
from scratchd.store import BuildLog, BuildRecord, StateDir, prune_builds

log = logging.getLogger(__name__)

SHUTDOWN = "daemon stopped"
_FAULTS = (BuildStatus.FAILED, BuildStatus.ERROR)  # what a full disk may have caused
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
    recorded: bool = False  # its outcome went to the scheduler (or waits to)


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
        self._unrecorded: list[tuple[BuildRecord, BuildOutcome]] = []
        self._reserve = Reserve(state.root / ".reserve")
        self._reserve.ensure()  # before any build can fill the disk
        #: One condition shared with the main loop, which clears it when space is back.
        self.disk_full = Condition(
            log, "the state directory's disk is full", "space is back on the state directory's disk"
        )

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
        digests: tuple[str, ...] = ()
        status, message = BuildStatus.ERROR, ""
        try:
            status, digests, message = self._logged_build(run)
        except Exception as exc:  # before the build ran (its log could not be opened ...)
            self._fault(record, exc)
            if not run.recorded:
                outcome = decide(str(record.id), error=exc)
                if is_disk_full(exc):
                    outcome = _for_want_of_space(outcome)
                status, message = self._record(run, outcome), outcome.reason
        finally:
            with self._lock:
                self._running.pop(record.id, None)
            try:
                self._after(record, status, digests, message)
            except Exception as exc:
                self._fault(record, exc)
            self._on_done()

    def _logged_build(self, run: Running) -> tuple[BuildStatus, tuple[str, ...], str]:
        """The build with its log file and journal consumer around it."""
        record = run.record
        fields = record.journal_fields
        path = self._state.log_path(record.repo, record.id)
        work = self._state.work_dir(record.repo, record.id)
        self._store.set_paths(record.id, log_path=path, work_dir=work)
        masker = self._new_masker()
        build_log = BuildLog(path, masker=masker, on_error=lambda exc: self._fault(record, exc))
        self._router.register(str(record.id), build_log, _journal_consumer(fields, masker))
        log.info("build %s of %s started", record.id, record.short_sha, extra=fields)
        digests: tuple[str, ...] = ()
        status, message = BuildStatus.ERROR, ""
        try:
            status, digests, message = self._build(run, build_log, work, masker)
        except Exception:
            log.exception("build %s: internal error", record.id, extra=fields)
        finally:
            self._router.unregister(str(record.id))
            build_log.line(f"build {status}{': ' + message if message else ''}", "info")
            build_log.finish()
        return status, digests, message

    def _fault(self, record: BuildRecord, exc: BaseException) -> None:
        """A fault around a build (no space for its log, ...): once per condition, no trace."""
        if is_disk_full(exc):
            self.disk_full.failed(f"{exc} (build {record.id})", **record.journal_fields)
        else:
            log.error("build %s: %s", record.id, exc, exc_info=exc, extra=record.journal_fields)

    def _build(self, run: Running, build_log: BuildLog, work: Path, redactor: Redactor):
        """Run the build; returns (status, digests, message) as recorded."""
        record = run.record
        masker = redactor  # the build's one masker: every sink of this build uses it
        try:
            outcome = self._execute(record, run.cancel, build_log, work, masker)
        except Exception as exc:  # before the executor ran: checkout, wercker.yml, a bug
            if not isinstance(exc, ScratchdError) and not is_disk_full(exc):
                log.exception("build %s crashed", record.id, extra=record.journal_fields)
            outcome = decide(str(record.id), error=exc, mask=masker.redact)
        outcome = self._out_of_space(outcome, work, build_log)
        # Cut short by the shutdown (not failed on its own): run again at the next start.
        if run.cancel.is_set() and run.reason == SHUTDOWN and outcome.cut_short:
            outcome = outcome.interrupted(SHUTDOWN)
        elif not outcome.passed:
            build_log.line(outcome.reason, "info")
        self._record_pushes(record, outcome)
        status = self._record(run, outcome)
        digests = () if status == BuildStatus.INTERRUPTED else outcome.digests
        return status, digests, "" if outcome.passed else outcome.reason

    def _record_pushes(self, record: BuildRecord, outcome: BuildOutcome) -> None:
        """What the build's pushes moved (for ``/metrics``), before its status is final.

        Written first so a reader who sees the build finished sees its pushes
        too. Figures only: failing to write them never changes the outcome.
        """
        try:
            self._store.record_pushes(record.id, outcome.pushes)
        except ScratchdError as exc:
            self._fault(record, exc)

    def _out_of_space(self, outcome: BuildOutcome, work: Path, build_log: BuildLog):
        """A build that did not pass while the disk is full failed for want of space.

        That is the machine's fault, not the commit's: an infrastructure error,
        retried (the main loop starts no build until space is back). The
        build's work directory goes at once: it is the likeliest space to free.
        """
        full = build_log.write_error is not None and is_disk_full(build_log.write_error)
        if outcome.status not in _FAULTS or not (full or low_on_space(work)):
            return outcome  # passed, or cancelled by someone: not the disk's doing
        shutil.rmtree(work, ignore_errors=True)
        return _for_want_of_space(outcome)

    def _record(self, run: Running, outcome: BuildOutcome) -> BuildStatus:
        """``scheduler.finish``, or keep the outcome for :meth:`record_pending`.

        On a full disk the reserve is given up to make room for this write.
        The main loop is woken at once: the build's slot is free now, and the
        next build need not wait for this one's log compression, note and pruning.
        """
        run.recorded = True  # written now, or kept to be written: never twice
        status = self._finish(run.record, outcome)
        self._on_done()
        return status

    def _finish(self, record: BuildRecord, outcome: BuildOutcome) -> BuildStatus:
        try:
            try:
                return self._scheduler.finish(record, outcome)
            except ScratchdError as exc:
                if not (is_disk_full(exc) and self._reserve.release()):
                    raise
                return self._scheduler.finish(record, outcome)
        except ScratchdError as exc:  # the state database cannot be written
            self._fault(record, exc)
            with self._lock:
                self._unrecorded.append((record, outcome))
            return outcome.status

    def record_pending(self) -> int:
        """Record outcomes the database refused earlier; returns how many remain.

        The main loop calls this every heartbeat: the build stays ``running``
        in the store (its slot taken, the queue untouched) until its outcome
        is written, and then it is retried or final as policy says. With
        nothing pending and space to spare, the disk reserve is put back.
        """
        with self._lock:
            pending, self._unrecorded = self._unrecorded, []
        for record, outcome in pending:
            self._finish(record, outcome)
        with self._lock:
            left = len(self._unrecorded)
        if pending and left < len(pending):
            self._on_done()
        if not left:
            self._reserve.ensure()
        return left

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
            deploy_target=repo.deploy_target,
            executor=config.executor_for(repo),
            build_id=str(record.id),
        )
        # For the web page; the masker now knows the repository's secrets.
        subject = masker.redact(info.message.strip().split("\n", 1)[0]) or None
        author = masker.redact(info.author) or None
        self._store.set_commit_facts(
            record.id, subject=subject, author=author, executor=plan.executor
        )
        if self._engines is not None and plan.executor == "docker":
            return self._on_engine(record, tuple(repo.labels), plan, cancel, build_log, masker)
        return self._executor.run(plan, cancel, masker)

    def _on_engine(self, record, labels, plan, cancel, build_log, masker: Redactor):
        """Hold a slot on an engine of the pool for the whole build (all its pipelines).

        While it waits, the build is next on one engine: its first pipeline's
        container is made there, so the freed slot only has to run the steps.
        """
        assert self._engines is not None
        ready = _Ready(self._executor, plan, masker, record.journal_fields)
        try:
            lease = self._engines.acquire(
                record.repo,
                str(record.id),
                labels,
                cancel=cancel,
                on_wait=lambda why: build_log.line(why, "info"),
                on_next=ready.next_on,
            )
        except BaseException:
            ready.discard()
            raise
        if lease is None:
            ready.discard()
            raise BuildCancelled("cancelled while waiting for an engine")
        fields = {**record.journal_fields, "ENGINE": lease.engine}
        log.info("build %s placed on engine %s", record.id, lease.engine, extra=fields)
        build_log.line(f"running on engine {lease.engine}", "info")
        self._router.register(str(record.id), build_log, _journal_consumer(fields, masker))
        outcome = None
        try:
            kind = f"engine:{lease.engine}"
            outcome = self._executor.run(
                replace(plan, executor=kind), cancel, masker, ready.take(kind)
            )
            return outcome
        finally:
            self._engines.release(lease, lost=outcome is None or outcome.retryable)

    def _after(self, record: BuildRecord, status, digests, message: str) -> None:
        """Notes, retention: after the outcome is recorded, never able to change it."""
        config = self._config()
        repo = config.repo(record.repo)
        fields = record.journal_fields
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


class _Ready:
    """The first pipeline's container, prepared on the engine a waiting build is next on."""

    def __init__(self, executor: BuildExecutor, plan, masker: Redactor, fields: dict) -> None:
        self._executor, self._plan, self._masker, self._fields = executor, plan, masker, fields
        self._prepared: PreparedPipeline | None = None

    def next_on(self, engine: str | None) -> None:
        self.discard()
        if engine is None:
            return
        try:
            plan = replace(self._plan, executor=f"engine:{engine}")
            self._prepared = self._executor.prepare(plan, self._masker)
        except Exception as exc:  # only a head start: the build still runs, on a fresh container
            trace = not isinstance(exc, ScratchdError)
            log.warning(
                "cannot prepare on engine %s: %s", engine, exc, exc_info=trace, extra=self._fields
            )

    def take(self, kind: str) -> PreparedPipeline | None:
        """The prepared pipeline if it is on ``kind``'s engine; any other is removed."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None and prepared.kind != kind:
            prepared.discard()
            return None
        return prepared

    def discard(self) -> None:
        prepared, self._prepared = self._prepared, None
        if prepared is not None:
            prepared.discard()


def _for_want_of_space(outcome: BuildOutcome) -> BuildOutcome:
    """The outcome as an infrastructure error: the disk, not the commit, failed it."""
    return replace(
        outcome,
        status=BuildStatus.ERROR,
        message=f"no space left on the state directory's disk ({outcome.reason})",
        failed_pipeline="",
        failed_step="",
        retryable=True,
        internal=False,
    )


def _journal_consumer(fields: dict[str, str], masker: Redactor) -> Callable:
    from scratchd.journal import output_consumer

    return output_consumer({k: v for k, v in fields.items() if k != "BUILD_ID"}, redactor=masker)
