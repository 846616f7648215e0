"""Noticing new commits: inotify on each git dir, a poll as safety net, cron rebuilds.

One scanner thread owns all ref state. Everything that may mean "refs
changed" — an inotify event under ``refs/``, ``packed-refs`` or ``HEAD``,
the periodic poll, a cron tick, an explicit :meth:`Watcher.scan` — only
*requests* a scan of a repository; the scanner thread reads the refs with
pygit2, diffs them against what it saw last and reports the difference to
the sink. Because only that thread touches the state, a burst of events
from several sources can never report the same update twice.

An inotify event is scanned at once: git moves a ref by renaming its lock
file into place, and ``*.lock`` names are ignored, so the first event that
counts already finds the new ref. Waiting for more events (a debounce, 10 ms
here before) only added its length to every commit → running. A push of
several refs renames them one by one; a rename that lands after the scan
started just causes one more scan (requests made meanwhile coalesce).

A repository that cannot be read (deleted, permissions, half-written) is
logged once, its watches dropped, and retried by every poll; when it is
readable again it is watched again and whatever changed meanwhile reported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from scratchd.errors import GitError
from scratchd.git import limits
from scratchd.git.inotify import GitDirWatches
from scratchd.git.refs import RefUpdate, diff_refs, git_dir, read_refs, with_commits
from scratchd.models import Trigger

log = logging.getLogger(__name__)

DEFAULT_DEBOUNCE = 0.0  # seconds from the first inotify event to the scan (tests raise it)
#: Every this many polls, even repositories inotify watches are read (a missed event's
#: safety net); the other polls read only those without watches. Reading 1,000
#: repositories' refs costs about a CPU-second, too much to do every minute for nothing.
FULL_SWEEP_EVERY = 10


class WatchSink(Protocol):
    """Where the watcher reports; called on the scanner thread, one call at a time."""

    def refs_changed(self, repo: str, updates: list[RefUpdate], trigger: Trigger) -> None:
        """Record the updates durably. Raising means "not recorded": they are reported again."""

    def cron_fired(self, repo: str, refs: Mapping[str, str]) -> None:
        """A repository's cron ``schedule`` is due; ``refs`` are its current watched tips."""


@dataclass(frozen=True)
class WatchSpec:
    """What to watch in one configured repository."""

    name: str
    path: Path
    branches: tuple[str, ...] = ("main",)
    tags: tuple[str, ...] = ()
    schedule: str = ""  # crontab line, empty for none


@dataclass
class _RepoState:
    spec: WatchSpec
    known: dict[str, str]
    available: bool | None = None  # None: not scanned yet
    watches: list[object] = field(default_factory=list)
    cron_job: Job | None = None  # apscheduler's, for remove()
    dropped: bool = False
    retry: bool = False  # the sink refused the last report: the next poll reads it again


def _urgency(request: tuple[float, Trigger], now: float) -> tuple[bool, bool, float]:
    """Sort key of a pending scan: due ones first, of those pushes first, then by time."""
    due, trigger = request
    if due > now:
        return True, False, due
    return False, trigger is not Trigger.PUSH, due


class Watcher:
    """Watches configured repositories and reports ref updates to a :class:`WatchSink`.

    ``inotify=False`` leaves only the poll (NFS, or the benchmark's baseline).
    """

    def __init__(
        self,
        sink: WatchSink,
        *,
        poll_interval: float = 60.0,
        debounce: float = DEFAULT_DEBOUNCE,
        inotify: bool = True,
        limits_dir: Path = limits.PROC_DIR,
    ) -> None:
        self._sink = sink
        self._limits_dir = limits_dir  # /proc/sys; tests present their own limits
        self._limit_warnings: set[str] = set()  # each said once, not once per repository
        self._poll_interval = poll_interval
        self._debounce = debounce
        self._inotify = GitDirWatches() if inotify else None
        self._cond = threading.Condition()
        self._repos: dict[str, _RepoState] = {}
        self._pending: dict[str, tuple[float, Trigger]] = {}
        self._pending_cron: set[str] = set()
        #: Wall-clock time of the first inotify event since a repository's last scan:
        #: when the daemon first saw its refs move (the start of the trigger latency).
        self._event_at: dict[str, float] = {}
        self._stopping = False
        self.scans = 0  # how many scans ran (a quiet repository must cost none)
        self._polls = 0
        self._thread = threading.Thread(target=self._run, name="scratchd-watcher", daemon=True)
        # Created now so cron jobs can be added before start(); it runs from start().
        self._scheduler = BackgroundScheduler(daemon=True)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> None:
        if self._inotify is not None:
            self._inotify.start()
        self._scheduler.add_job(
            self._poll, "interval", seconds=self._poll_interval, id="poll", coalesce=True
        )
        self._scheduler.start()
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._inotify is not None:
            self._inotify.stop()
        if self._thread.is_alive():
            self._thread.join(10)

    # -- configuration -----------------------------------------------------

    def configure(
        self, specs: Iterable[WatchSpec], known: Mapping[str, Mapping[str, str]] | None = None
    ) -> None:
        """Watch exactly ``specs``: add new repositories, drop removed ones, update changed.

        ``known`` gives the last-seen refs of repositories new to this
        watcher (from the store), so their first scan reports what arrived
        while nobody watched. Repositories already watched keep their state
        and are not read again: a reload that adds 100 repositories to 1,000
        queues 100 scans, not 1,100 in front of the next push.
        """
        by_name = {s.name: s for s in specs}
        known = known or {}
        dropped = []
        with self._cond:
            for name, state in list(self._repos.items()):
                if by_name.get(name) != state.spec:
                    dropped.append(self._repos.pop(name))
                    self._drop(state)
            for name, spec in by_name.items():
                if name not in self._repos:
                    # A changed repository starts afresh but keeps what it had seen.
                    seen = next((d.known for d in dropped if d.spec.name == name), None)
                    state = _RepoState(spec, dict(seen or known.get(name, {})))
                    self._repos[name] = state
                    self._set_cron(state)
                    self._request(name, Trigger.POLL, delay=0.0)
        for state in dropped:
            self._unwatch(state)
        if self._inotify is not None:
            self._check_limits(len(by_name))

    def set_poll_interval(self, seconds: float) -> None:
        """Change the safety-net poll (a reloaded ``poll_interval``)."""
        if seconds != self._poll_interval:
            self._poll_interval = seconds
            if self._scheduler.get_job("poll") is not None:
                self._scheduler.reschedule_job("poll", trigger="interval", seconds=seconds)

    def repos(self) -> dict[str, bool | None]:
        """Each watched repository and whether it was readable at its last scan."""
        with self._cond:
            return {name: s.available for name, s in self._repos.items()}

    def scan(self, name: str | None = None, trigger: Trigger = Trigger.POLL) -> None:
        """Ask for a scan of one repository (or all) as soon as possible."""
        with self._cond:
            for repo in [name] if name else list(self._repos):
                self._request(repo, trigger, delay=0.0)

    def next_cron(self, name: str):
        """When the repository's cron ``schedule`` fires next (a datetime), or None."""
        with self._cond:
            state = self._repos.get(name)
            job = state.cron_job if state else None
        return getattr(job, "next_run_time", None) if job is not None else None

    def run_cron_now(self, name: str) -> None:
        """Do what the cron ``schedule`` does, now (``scratchd trigger`` of all tips)."""
        self._cron(name)

    # -- requests (any thread) -----------------------------------------------

    def _request(self, name: str, trigger: Trigger, delay: float) -> None:
        """Queue a scan; caller holds ``_cond``. A push trigger wins over a poll."""
        if name not in self._repos:
            return
        due = time.monotonic() + delay
        current = self._pending.get(name)
        if current is not None:
            due = min(due, current[0])
            trigger = Trigger.PUSH if Trigger.PUSH in (trigger, current[1]) else trigger
        self._pending[name] = (due, trigger)
        self._cond.notify()

    def _on_fs_event(self, name: str) -> None:
        seen = time.time()
        with self._cond:
            self._event_at.setdefault(name, seen)
            self._request(name, Trigger.PUSH, delay=self._debounce)

    def _poll(self) -> None:
        """Read what inotify cannot vouch for; everything every FULL_SWEEP_EVERY polls."""
        with self._cond:
            self._polls += 1
            full = self._inotify is None or self._polls % FULL_SWEEP_EVERY == 0
            for name, state in self._repos.items():
                if full or not state.watches or state.retry:
                    self._request(name, Trigger.POLL, delay=0.0)

    def _cron(self, name: str) -> None:
        with self._cond:
            if name in self._repos:
                self._pending_cron.add(name)
                self._request(name, Trigger.CRON, delay=0.0)

    # -- the scanner thread ------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            name, trigger, cron = job
            try:
                self._scan(name, trigger, cron)
            except Exception:
                log.exception("scanning %s failed", name, extra={"REPO": name})

    def _next_job(self) -> tuple[str, Trigger, bool] | None:
        """Block until a scan is due (or stop); no timed polling while idle.

        Of the scans that are due, a push goes first: a user waits for it,
        while a poll or a reload's first reads of new repositories wait for nobody.
        """
        with self._cond:
            while not self._stopping:
                if self._pending:
                    now = time.monotonic()
                    name, (due, trigger) = min(
                        self._pending.items(), key=lambda kv: _urgency(kv[1], now)
                    )
                    wait = due - now
                    if wait <= 0:
                        del self._pending[name]
                        cron = name in self._pending_cron
                        self._pending_cron.discard(name)
                        return name, trigger, cron
                    self._cond.wait(wait)
                else:
                    self._cond.wait()
            return None

    def _scan(self, name: str, trigger: Trigger, cron: bool) -> None:
        self.scans += 1
        with self._cond:
            state = self._repos.get(name)
        if state is None:
            return
        spec = state.spec
        if not state.watches:
            self._watch(state)
        with self._cond:  # an event seen before this read; else this read saw the change
            seen = self._event_at.pop(name, None) or time.time()
        try:
            current = read_refs(spec.path, spec.branches, spec.tags)
            updates = [
                _seen(with_commits(spec.path, u), seen)
                for u in diff_refs(name, state.known, current)
            ]
        except GitError as exc:
            self._unavailable(state, exc)
            return
        if state.available is not True:
            if state.available is False:
                log.warning("repository %s is readable again", name, extra={"REPO": name})
            state.available = True
        if updates:
            try:
                self._sink.refs_changed(name, updates, trigger)
            except Exception:
                state.retry = True
                raise
            state.known = current
        state.retry = False
        if cron:
            self._sink.cron_fired(name, current)

    def _unavailable(self, state: _RepoState, exc: GitError) -> None:
        name = state.spec.name
        if state.available is not False:
            log.error(
                "repository %s cannot be read, retrying every poll: %s",
                name,
                exc,
                extra={"REPO": name},
            )
        state.available = False
        self._unwatch(state)

    # -- inotify and cron plumbing ------------------------------------------

    def _watch(self, state: _RepoState) -> None:
        """inotify on the repository's git dir; a failure leaves the poll to find changes."""
        if self._inotify is None:
            return
        try:
            gdir = git_dir(state.spec.path)
            state.watches = self._inotify.watch(
                gdir, lambda: self._on_fs_event(state.spec.name), lambda: state.dropped
            )
        except GitError:
            return  # the scan that follows reports it
        except OSError as exc:
            with self._cond:
                repos = len(self._repos)
            why = limits.explain(exc, repos, limits.InotifyLimits.read(self._limits_dir))
            if why is None:
                log.warning("cannot watch %s: %s", gdir, exc, extra={"REPO": state.spec.name})
            else:
                self._warn_limit(why[0], f"{why[1]}; until then {gdir} and others are only polled")
            return
        if state.dropped:  # configure() dropped it while we were scheduling
            self._unwatch(state)

    def _check_limits(self, repos: int) -> None:
        """Say which sysctl to raise before inotify runs out, not after."""
        poll = f"{self._poll_interval:g}s"
        found = limits.too_low(repos, limits.InotifyLimits.read(self._limits_dir), poll)
        for setting, problem in found.items():
            self._warn_limit(setting, problem)

    def _warn_limit(self, setting: str, message: str) -> None:
        """Log a limit problem once per sysctl, not once per repository."""
        if setting not in self._limit_warnings:
            self._limit_warnings.add(setting)
            log.error("%s", message)

    def _unwatch(self, state: _RepoState) -> None:
        """Drop a repository's inotify watches (never called holding ``_cond``)."""
        if self._inotify is not None:
            self._inotify.unwatch(state.watches)
        state.watches = []

    def _drop(self, state: _RepoState) -> None:
        """Forget a repository (caller holds ``_cond``; watches go via :meth:`_unwatch`)."""
        state.dropped = True
        if state.cron_job is not None:
            state.cron_job.remove()
            state.cron_job = None
        self._pending.pop(state.spec.name, None)

    def _set_cron(self, state: _RepoState) -> None:
        if state.cron_job is not None or not state.spec.schedule:
            return
        name = state.spec.name
        try:
            cron = CronTrigger.from_crontab(state.spec.schedule)
        except ValueError as exc:
            log.error("repository %s: bad schedule: %s", name, exc, extra={"REPO": name})
            return
        state.cron_job = self._scheduler.add_job(self._cron, cron, args=[name], coalesce=True)


def _seen(update: RefUpdate, seen: float) -> RefUpdate:
    """The update with its commits stamped with when the daemon first saw the ref move."""
    return replace(update, commits=tuple(replace(c, seen_at=seen) for c in update.commits))
