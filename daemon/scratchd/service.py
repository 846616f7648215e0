"""The daemon: watch → store → scheduler → workers, with signals and sd_notify.

Start-up order matters for crash safety: builds a crash left ``running``
are recovered (queued again) *before* anything new is claimed, and the
watcher's first scan compares the refs on disk with the last-seen refs in
the store, so commits that landed while the daemon was down are queued
before it reports READY.

The main thread owns the loop. It sleeps on one event that the watcher
(new commits queued), the workers (a build ended), the signal handlers and
:meth:`Service.wake` (``scratchd trigger``/``cancel`` ring the state
directory's FIFO) set, so nothing waits for a timer. While idle the loop
wakes only when something is due: a backed-off retry, systemd's watchdog
ping (at half of ``WatchdogSec=``), or the safety-net look at SQLite's
``data_version`` every ``poll_interval`` (a lost doorbell costs latency,
never a build). The status row is written when the status text changes,
not on a timer: an idle daemon writes nothing to its state directory.

- SIGHUP: reload the config. Invalid → one log line, the old config stays.
  Repositories are added, removed or changed; running builds carry on. The
  file is read and validated on a thread of its own (1,000 repositories
  take a while); the loop only applies the result, so builds keep starting.
  Listeners (:meth:`Service.on_reload`: the engine pool) get the new config.
- SIGTERM/SIGINT: stop claiming, let running builds finish for
  ``shutdown_grace``, then cancel them: they are recorded ``interrupted``
  and queued again at the next start. Exit status 0.
"""

from __future__ import annotations

import functools
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from scratchd.config import Config
from scratchd.config.engines import unplaceable
from scratchd.errors import ScratchdError
from scratchd.faults import MIN_FREE_BYTES, Condition, is_disk_full, low_on_space
from scratchd.git.refs import RefUpdate
from scratchd.git.watcher import WatchSpec
from scratchd.models import Commit, Trigger
from scratchd.ports import (
    ConfigLoader,
    PolicyOf,
    PoolFactory,
    ServiceScheduler,
    ServiceStore,
    SystemdNotifier,
    WatcherFactory,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DRAIN_POLL = 0.2  # seconds between looks at cancel requests while draining
#: Seconds between looks while paused for a full disk or holding an unwritten outcome:
#: nothing signals freed space, so the loop must look, but never at an idle daemon's cost.
RECHECK_WHILE_TROUBLED = 3.0
DRAIN_AFTER_CANCEL = 30.0  # seconds builds get to tear down after the grace's cancel


class Service:
    """The running daemon. Collaborators come in; nothing is looked up globally.

    ``make_watcher(sink)`` builds the watcher (the service is its sink);
    ``make_pool(config_getter, on_done)`` builds the worker pool; ``loader``
    reads the config file again on SIGHUP.
    """

    def __init__(
        self,
        config: Config,
        *,
        store: ServiceStore,
        scheduler: ServiceScheduler,
        make_watcher: WatcherFactory,
        make_pool: PoolFactory,
        loader: ConfigLoader,
        policy_of: PolicyOf,
        notifier: SystemdNotifier | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._store, self._scheduler = store, scheduler
        self._loader, self._policy_of = loader, policy_of
        self._notifier = notifier
        self._clock = clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._reader: threading.Thread | None = None  # reading the file for a reload
        self._read: queue.SimpleQueue[Config | None] = queue.SimpleQueue()  # what it read
        self._started_at = clock()
        self._paused = False  # the disk is full: no build starts
        self._pending = 0  # build outcomes the database refused, kept to be written
        self._db_fault = Condition(
            log, "cannot write the state database", "the state database can be written again"
        )
        self._unplaceable: set[str] = set()  # logged once each
        self._placeable_in: tuple[Config, frozenset[str]] | None = None  # per dispatch, cached
        self._listeners: list[Callable[[], None]] = []  # told when builds may have changed
        self._reload_listeners: list[Callable[[Config], None]] = []
        self._watcher = make_watcher(self)
        self._pool = make_pool(lambda: self._config, self._wake.set)

    @property
    def config(self) -> Config:
        return self._config

    # -- signals (any thread, async-signal context) ---------------------------

    def request_stop(self, *_args: object) -> None:
        self._stop.set()
        self._wake.set()

    def request_reload(self, *_args: object) -> None:
        self._reload.set()
        self._wake.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGHUP, self.request_reload)

    # -- the loop ----------------------------------------------------------------

    def run(self) -> int:
        """Recover, watch, build until asked to stop; then drain. Returns the exit status."""
        recovered = self._scheduler.recover()
        if recovered:
            log.warning("recovered %d interrupted builds", len(recovered))
        self._watcher.start()
        self._watcher.configure(self._specs(), self._known(r.name for r in self._config.repos))
        self._notify("ready", self._status_text())
        self._loop()
        self._drain()
        return 0

    def _loop(self) -> None:
        seen_version, next_dog, last_status = None, 0.0, None
        while not self._stop.is_set():
            woken = self._wake.is_set()
            self._wake.clear()
            if self._reload.is_set() and self._reader is None:
                self._reload.clear()  # a SIGHUP during a read stays set: read again after
                self._start_reading()
            if self._apply_read():
                woken, last_status = True, None  # the repositories may have changed
            troubled = self._troubled()  # as the last pass left it
            version = self._store.data_version()
            now = self._clock()
            retry_at = self._scheduler.next_wakeup()
            due = retry_at is not None and retry_at <= now
            if woken or version != seen_version or due or troubled:
                seen_version = version
                self._guarded(self._dispatch)
                self._guarded(self._honour_cancels)
                self._tell_listeners()
            self._pending = self._guarded(self._pool.record_pending) or 0
            if troubled:
                last_status = None  # written again: a write that works ends the fault
            last_status = self._heartbeat("running", last_status)
            interval = self._notifier.watchdog_interval if self._notifier else None
            if self._notifier is not None and interval and now >= next_dog:
                self._notifier.watchdog()
                next_dog = now + interval
            if retry_at is not None and retry_at <= now:  # offered above; wait for the next one
                retry_at = self._scheduler.next_wakeup(after=now)
            self._wake.wait(
                self._sleep_for(now, retry_at, next_dog if interval else None, self._troubled())
            )

    def _troubled(self) -> bool:
        """Paused for a full disk, an outcome not yet written, or the database refusing.

        Nothing wakes the loop when space is freed or the database recovers,
        so in this state (and only in it) the loop looks again every
        :data:`RECHECK_WHILE_TROUBLED` seconds.
        """
        return (
            self._paused
            or self._pending > 0
            or self._pool.disk_full.active
            or self._db_fault.active
        )

    def _sleep_for(
        self, now: float, retry_at: float | None, dog_at: float | None, troubled: bool = False
    ) -> float:
        """Until the first thing due: a retry, the watchdog ping, or the safety-net look.

        A retry already due was just offered to the scheduler; if it is still
        queued, a full pool or a busy ref holds it, and the build that frees
        either wakes the loop. Sleeping until it again would spin. While
        troubled (:meth:`_troubled`), no longer than :data:`RECHECK_WHILE_TROUBLED`.
        """
        due = [now + self._config.daemon.poll_interval]
        due += [t for t in (retry_at, dog_at) if t is not None and t > now]
        if troubled:
            due.append(now + RECHECK_WHILE_TROUBLED)
        return max(0.0, min(due) - now)

    def wake(self) -> None:
        """Look at the database now (another process queued or cancelled a build)."""
        self._wake.set()

    def on_activity(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever the loop acts on a change (the notification sender).

        Builds change state (and the store writes their events) only around the
        loop's wakes, so a listener needs no timer of its own to notice them.
        """
        self._listeners.append(listener)

    def on_reload(self, listener: Callable[[Config], None]) -> None:
        """Call ``listener(new_config)`` after each accepted reload (the engine pool)."""
        self._reload_listeners.append(listener)

    def _tell_listeners(self) -> None:
        for listener in self._listeners:
            listener()

    def _guarded(self, action: Callable[[], T]) -> T | None:
        """Run one loop action; a store fault is logged once per condition, never fatal."""
        try:
            return action()
        except ScratchdError as exc:
            self._fault(exc)
            return None

    def _fault(self, exc: ScratchdError) -> None:
        if is_disk_full(exc):
            self._pool.disk_full.failed(exc)
        else:
            self._db_fault.failed(exc)

    def _dispatch(self) -> None:
        """Start every build the scheduler allows now (claimed = durably ``running``).

        Not while the state directory's disk is full: a build could only fail
        for want of space (and use up its retries). The queue waits, and the
        loop looks again every few seconds (:data:`RECHECK_WHILE_TROUBLED`)
        until space is back.

        A repository whose labels no engine has is left out: its builds stay
        queued (``scratchd status`` says why) instead of holding a slot forever.
        """
        state = self._config.daemon.state_dir
        self._paused = low_on_space(state)
        if self._paused:
            self._pool.disk_full.failed(
                f"less than {MIN_FREE_BYTES // 1024} KiB free under {state}; "
                "no build starts until space is freed"
            )
            return
        self._pool.disk_full.cleared()  # said before the first build starts again
        for job in self._scheduler.next_jobs(self._placeable_repos()):
            self._pool.start(job)

    def _placeable_repos(self) -> frozenset[str]:
        """Names of the repositories some engine can build, worked out once per config."""
        config = self._config
        if self._placeable_in is None or self._placeable_in[0] is not config:
            names = frozenset(r.name for r in config.repos if self._placeable(r))
            self._placeable_in = (config, names)
        return self._placeable_in[1]

    def _placeable(self, repo) -> bool:
        why = unplaceable(tuple(repo.labels), self._config.engines)
        if why is not None and repo.name not in self._unplaceable:
            log.error(
                "repository %s can never be placed: %s", repo.name, why, extra={"REPO": repo.name}
            )
        if why is None:
            self._unplaceable.discard(repo.name)
        else:
            self._unplaceable.add(repo.name)
        return why is None

    def _honour_cancels(self) -> None:
        for build in self._scheduler.cancellations():
            self._pool.cancel(build.id, build.message or "cancelled")

    def _drain(self) -> None:
        """SIGTERM: no new builds; running ones get the grace, then are cancelled."""
        grace = self._config.daemon.shutdown_grace
        running = len(self._pool.running())
        log.warning("stopping: %d builds running, waiting up to %.0fs", running, grace)
        self._notify("stopping", f"stopping, {running} builds running")
        self._watcher.stop()
        deadline = time.monotonic() + grace
        while not self._pool.join(min(DRAIN_POLL, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                self._pool.cancel_all()
                self._pool.join(DRAIN_AFTER_CANCEL)
                break
            self._honour_cancels()  # `scratchd cancel` still works while draining
            self._tell_listeners()  # builds are ending: their events go out now
        self._tell_listeners()
        self._heartbeat("stopped")
        log.warning("stopped")

    # -- reload --------------------------------------------------------------------

    def reload(self) -> bool:
        """Read the config file again and apply it; keep the old one if the new one is invalid."""
        self._notify("reloading")
        new = self._read_config()
        if new is None:
            self._notify("ready", self._status_text())
            return False
        self._apply(new)
        return True

    def _start_reading(self) -> None:
        """Read and validate the file on a thread; :meth:`_apply_read` takes the result."""
        self._notify("reloading")

        def read() -> None:
            try:
                self._read.put(self._read_config())
            finally:
                self._wake.set()

        self._reader = threading.Thread(target=read, name="scratchd-reload", daemon=True)
        self._reader.start()

    def _apply_read(self) -> bool:
        """Apply what the reading thread read, if it is done; whether anything changed."""
        if self._reader is None or self._read.empty():
            return False
        new = self._read.get()
        self._reader.join()
        self._reader = None
        if new is None:
            self._notify("ready", self._status_text())
            if self._reload.is_set():
                self._wake.set()  # another SIGHUP came meanwhile
            return False
        self._apply(new)
        return True

    def _read_config(self) -> Config | None:
        old = self._config
        try:
            new = self._loader(old.path)
        except ScratchdError as exc:
            log.error("reload rejected, keeping the running config: %s", exc)
            return None
        if bool(new.engines) != bool(old.engines):
            # The local engine and a pool are wired differently at start.
            log.error(
                "reload rejected, keeping the running config: %s the %s [[engine]] needs a restart",
                "adding" if new.engines else "removing",
                "first" if new.engines else "last",
            )
            return None
        return new

    def _apply(self, new: Config) -> None:
        """Swap in ``new``: policy, watched repositories, the poll (the loop's thread)."""
        from scratchd.config import repo_changes

        old = self._config
        if new.daemon.state_dir != old.daemon.state_dir:
            log.error("state_dir changes need a restart; still using %s", old.daemon.state_dir)
            new = replace(new, daemon=replace(new.daemon, state_dir=old.daemon.state_dir))
        changes = repo_changes(old, new)
        self._config = new
        for listener in self._reload_listeners:
            self._guarded(functools.partial(listener, new))
        self._scheduler.reconfigure(self._policy_of(new))
        self._watcher.configure(self._specs(), self._known(r.name for r in changes.added))
        self._watcher.set_poll_interval(new.daemon.poll_interval)
        for repo in changes.added:
            log.warning("reload: repository %s added", repo.name, extra={"REPO": repo.name})
        for repo in changes.removed:
            dropped = self._scheduler.repo_removed(repo.name)
            log.warning(
                "reload: repository %s removed; cancelled queued builds %s",
                repo.name,
                dropped or "(none)",
                extra={"REPO": repo.name},
            )
        for repo in changes.changed:
            log.warning("reload: repository %s changed", repo.name, extra={"REPO": repo.name})
        log.warning("config reloaded from %s: %d repositories", new.path, len(new.repos))
        self._notify("ready", self._status_text())
        self._wake.set()

    # -- the watcher's sink (scanner thread) -----------------------------------------

    def refs_changed(self, repo: str, updates: list[RefUpdate], trigger: Trigger) -> None:
        """Queue the commits (durably, with the refs' last-seen shas), then wake the loop."""
        if self._config.repo(repo) is None:
            return
        for update in updates:
            if update.deleted:
                dropped = self._scheduler.ref_deleted(repo, update.ref)
                log.warning(
                    "%s deleted; dropped queued builds %s",
                    update.ref,
                    dropped or "none",
                    extra={"REPO": repo, "BRANCH": update.ref},
                )
        commits = [c for u in updates for c in u.commits]
        if commits:
            submitted = self._scheduler.submit(commits, trigger)
            for build in submitted.cancel:
                self._pool.cancel(build.id, build.message or "superseded")
        self._wake.set()

    def cron_fired(self, repo: str, refs: Mapping[str, str]) -> None:
        commits = [Commit(repo, ref, sha) for ref, sha in sorted(refs.items())]
        self._scheduler.submit(commits, Trigger.CRON, update_ref=False)
        self._wake.set()

    # -- helpers -----------------------------------------------------------------------

    def _specs(self) -> list[WatchSpec]:
        return [
            WatchSpec(r.name, r.path, tuple(r.branches), tuple(r.tags), r.schedule or "")
            for r in self._config.repos
        ]

    def _known(self, names: Iterable[str]) -> dict[str, dict[str, str]]:
        return {name: self._store.refs(name) for name in names}

    def _status_text(self) -> str:
        watched = self._watcher.repos()
        broken = sum(1 for ok in watched.values() if ok is False)
        return status_text(
            len(watched), len(self._pool.running()), self._store.count_queued(), broken
        )

    def _heartbeat(self, status: str, last: str | None = None) -> str:
        """Write the status row when its text differs from ``last``; returns the text.

        ``scratchd status`` learns liveness from the daemon's lock, so an
        unchanged status is not written again (an idle daemon stays still).
        """
        text = self._status_text() if status == "running" else status
        if text == last:
            return text
        try:
            self._store.heartbeat(
                text,
                [r.name for r in self._config.repos],
                started_at=self._started_at,
                config_path=str(self._config.path),
            )
        except ScratchdError as exc:
            self._fault(exc)
            return last or ""  # not written: tried again at the next pass
        else:
            self._db_fault.cleared()
            if not low_on_space(self._config.daemon.state_dir):
                self._pool.disk_full.cleared()
        if status == "running":
            self._notify("status", text)
        return text

    def _notify(self, what: str, *args: Any) -> None:
        if self._notifier is not None:
            getattr(self._notifier, what)(*args)


def status_text(watched: int, running: int, queued: int, unreadable: int = 0) -> str:
    """The one-line state ``systemctl status`` and ``scratchd status`` show.

    "watching 1 repo, 2 running, 0 queued": an operator reads it, so the
    noun agrees with the count.
    """
    noun = "repo" if watched == 1 else "repos"
    text = f"watching {watched} {noun}, {running} running, {queued} queued"
    return text + (f", {unreadable} unreadable" if unreadable else "")
