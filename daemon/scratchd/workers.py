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
from dataclasses import dataclass, field
from pathlib import Path

from scratchd.errors import (
    BuildCancelled,
    InfrastructureError,
    PipelineError,
    ScratchdError,
    StepFailed,
)
from scratchd.models import BuildStatus, Commit
from scratchd.redact import Redactor
from scratchd.store import BuildLog, BuildRecord, StateDir, Store, prune_builds

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
    ``run(BuildRequest, cancel) -> BuildResult``; ``checkout`` has
    ``export(commit, source, dest) -> CommitInfo``; ``router`` is the
    executor's line consumer (lines go to the build's log file and the
    journal); ``config()`` returns the
    current :class:`~scratchd.config.Config` (it changes on SIGHUP; a build
    keeps the repository settings it started with).
    """

    def __init__(
        self,
        *,
        store: Store,
        scheduler,
        executor,
        checkout,
        state: StateDir,
        config: Callable[[], object],
        router: OutputRouter,
        on_done: Callable[[], None] = lambda: None,
        notes_writer: Callable[[Path, str, str], None] | None = None,
    ) -> None:
        self._store, self._scheduler, self._executor = store, scheduler, executor
        self._checkout, self._state, self._config = checkout, state, config
        self._router, self._on_done = router, on_done
        self._notes_writer = notes_writer
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
        build_log = BuildLog(path)
        self._router.register(str(record.id), build_log, _journal_consumer(fields))
        log.info("build %s of %s started", record.id, record.short_sha, extra=fields)
        status, digests, message = BuildStatus.ERROR, (), ""
        try:
            status, digests, message = self._build(run, build_log, work)
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

    def _build(self, run: Running, build_log: BuildLog, work: Path):
        """Run the build; returns (status, digests, message) as recorded."""
        record = run.record
        result, error = None, None
        redactor = Redactor()
        try:
            result = self._execute(record, run.cancel, build_log, work, redactor)
            error = _error_of(result)
        except ScratchdError as exc:
            error = exc
        except Exception as exc:  # a bug: recorded as this build's error, logged above
            log.exception("build %s crashed", record.id, extra=_fields(record))
            error = exc
        # Cut short by the shutdown (not failed on its own): run again at the next start.
        cut_short = isinstance(error, BuildCancelled | InfrastructureError)
        if run.cancel.is_set() and run.reason == SHUTDOWN and cut_short:
            self._scheduler.interrupt(record, SHUTDOWN)
            return BuildStatus.INTERRUPTED, (), SHUTDOWN
        if error is not None:
            build_log.line(redactor.redact(str(error)), "info")
        digests = result.digests if result is not None else ()
        status = self._scheduler.finish(
            record,
            error,
            images=digests,
            failed_step=result.failed_step or None if result else None,
            redactor=redactor,
        )
        message = redactor.redact(str(error)) if error is not None else ""
        return status, digests, message

    def _execute(self, record, cancel, build_log, work: Path, redactor: Redactor):
        from scratchd.pipeline.parse import decode, parse_plan
        from scratchd.runner.results import BuildRequest

        config = self._config()
        repo = config.repo(record.repo)
        if repo is None:
            raise PipelineError(f"repository {record.repo} is no longer configured")
        shutil.rmtree(work, ignore_errors=True)  # a retry or a recovered build starts clean
        source = work / "source"
        commit = Commit(record.repo, record.ref, record.sha)
        build_log.line(f"checking out {record.sha} ({record.branch}) of {repo.path}", "info")
        info = self._checkout.export(commit, repo.path, source)
        plan_file = source / repo.pipeline_file
        shown = f"{repo.name}:{repo.pipeline_file}"
        if not plan_file.is_file():
            raise PipelineError(f"{shown}: no such file in commit {record.short_sha}")
        plan = parse_plan(decode(plan_file.read_bytes(), shown), shown)
        secrets = _secrets(repo)
        redactor.add(*(s.reveal() for s in secrets.values()))
        subject = redactor.redact(info.message.strip().split("\n", 1)[0]) or None
        self._store.set_commit_facts(
            record.id, subject=subject, executor=config.executor_for(repo)
        )  # for the web page
        request = BuildRequest(
            plan=plan,
            commit=info,
            source=source,
            work_dir=work / "pipelines",
            cache_dir=self._state.cache_dir(repo.name),
            pipelines=_pipelines(plan, repo.pipelines, shown),
            executor=config.executor_for(repo),
            secrets=secrets,
            build_id=str(record.id),
        )
        return self._executor.run(request, cancel)

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


def _error_of(result) -> ScratchdError | None:
    """The result as the scheduler's input: None (passed), cancelled, or the failed step."""
    if result.passed:
        return None
    if result.status == BuildStatus.CANCELLED:
        return BuildCancelled(result.message or "cancelled")
    where = f"{result.failed_pipeline}/{result.failed_step}" if result.failed_step else ""
    text = f"step {where} failed: {result.message}" if where else result.message
    return StepFailed(text or "build failed", step=result.failed_step, exit_code=result.exit_code)


def _pipelines(plan, configured: tuple[str, ...], shown: str) -> tuple[str, ...]:
    """The configured pipelines this wercker.yml has (a build-only file is fine)."""
    names = tuple(n for n in configured if plan.pipeline(n) is not None)
    if not names:
        raise PipelineError(f"{shown}: none of the pipelines {', '.join(configured)} is defined")
    return names


def _secrets(repo) -> dict:
    if repo.secrets_file is None:
        return {}
    from scratchd.pipeline.secrets import load_secrets_file

    return dict(load_secrets_file(repo.secrets_file))


def _journal_consumer(fields: dict[str, str]) -> Callable:
    from scratchd.journal import output_consumer

    return output_consumer({k: v for k, v in fields.items() if k != "BUILD_ID"})


def _fields(b: BuildRecord) -> dict[str, str]:
    return {"REPO": b.repo, "BRANCH": b.branch, "COMMIT": b.sha, "BUILD_ID": str(b.id)}
