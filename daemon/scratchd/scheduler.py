"""Queue policy on top of the store: what to queue, what to start, what to retry.

The store keeps the facts and does each change atomically; this module
decides. It holds no state of its own besides its policy, so a restarted
daemon (or a second process) makes the same decisions from the database.

- **Coalescing** (default): a new commit supersedes the queued builds of its
  ref, which become cancelled "superseded by <sha>"; ``build_every_commit``
  keeps every commit queued and builds them in order.
- **Concurrency**: at most ``max_concurrent_builds`` running, and one
  running build per (repo, ref).
- **cancel_superseded**: a new commit also flags the running build of its
  ref for cancellation (the daemon honours flags from ``cancellations()``).
- **Retries**: an infrastructure-error outcome whose ``retryable`` is true
  is retried with exponential backoff, up to ``retry_limit`` attempts; a
  failed build never.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from scratchd.models import BuildStatus, Commit, Trigger
from scratchd.outcome import BuildOutcome
from scratchd.store import BuildRecord, Store

log = logging.getLogger(__name__)

Clock = Callable[[], float]


@dataclass(frozen=True)
class RepoPolicy:
    build_every_commit: bool = False
    cancel_superseded: bool = False


@dataclass(frozen=True)
class Policy:
    """Scheduling knobs; :meth:`from_config` reads them from a loaded Config."""

    max_concurrent_builds: int = 2
    retry_limit: int = 3  # total attempts, the first included
    retry_delay: float = 30.0
    retry_max_delay: float = 600.0
    repos: Mapping[str, RepoPolicy] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def from_config(cls, config) -> Policy:
        """From a :class:`scratchd.config.Config` (duck-typed: no import of config)."""
        d = config.daemon
        return cls(
            max_concurrent_builds=engine_builds(getattr(config, "engines", ()))
            or d.max_concurrent_builds,
            retry_limit=d.retry_limit,
            retry_delay=d.retry_delay,
            retry_max_delay=d.retry_max_delay,
            repos=MappingProxyType(
                {
                    r.name: RepoPolicy(r.build_every_commit, r.cancel_superseded)
                    for r in config.repos
                }
            ),
        )

    def repo(self, name: str) -> RepoPolicy:
        return self.repos.get(name, RepoPolicy())

    def backoff(self, attempt: int) -> float:
        """Delay before attempt ``attempt + 1``: delay, 2*delay, 4*delay ... capped."""
        return min(self.retry_max_delay, self.retry_delay * 2 ** max(0, attempt - 1))


def engine_builds(engines) -> int:
    """How many builds may run with ``[[engine]]`` blocks: every slot, plus one per engine.

    Placement hands out the slots; the one extra build per engine is checked
    out and compiled while that engine is busy, and waits for its slot
    (its log says so), so a freed slot is taken at once instead of after
    the next build's checkout. 0 without engines.
    """
    return sum(e.capacity + 1 for e in engines)


@dataclass(frozen=True)
class Submitted:
    """What :meth:`Scheduler.submit` did: builds queued, running builds to cancel."""

    queued: tuple[BuildRecord, ...]
    cancel: tuple[BuildRecord, ...] = ()


class Scheduler:
    """Policy over a :class:`Store`; ``clock`` is injectable for tests."""

    def __init__(self, store: Store, policy: Policy, clock: Clock = time.time) -> None:
        self.store, self.policy, self.clock = store, policy, clock

    def reconfigure(self, policy: Policy) -> None:
        """Take a reloaded config (SIGHUP); queued builds are kept."""
        self.policy = policy

    # -- input ------------------------------------------------------------------

    def submit(
        self, commits: Sequence[Commit], trigger: Trigger, *, update_ref: bool = True
    ) -> Submitted:
        """Queue builds for new commits of one or more refs (oldest first per ref).

        The job rows and the refs' last-seen shas are committed together, before
        anything runs. Without ``build_every_commit`` only each ref's newest
        commit is queued: the older ones never had a build to supersede. A
        manual trigger asked for *that* commit, so it supersedes nothing.
        """
        if not commits:
            return Submitted(())
        queued: list[BuildRecord] = []
        cancel: list[BuildRecord] = []
        for repo, group in _by_repo(commits).items():
            rp = self.policy.repo(repo)
            moved = trigger != Trigger.MANUAL  # the branch moved on, not a user's pick
            wanted = group if rp.build_every_commit else _newest_per_ref(group)
            queued += self.store.enqueue(
                wanted,
                trigger,
                coalesce=moved and not rp.build_every_commit,
                update_ref=update_ref,
                now=self.clock(),
            )
            if moved and rp.cancel_superseded:
                for c in _newest_per_ref(group):
                    cancel += self.store.cancel_superseded(c.repo, c.ref, c.sha)
        for b in queued:
            log.info("queued build %s of %s", b.id, b.short_sha, extra=b.journal_fields)
        return Submitted(tuple(queued), tuple(cancel))

    def ref_deleted(self, repo: str, ref: str) -> list[int]:
        """A watched branch or tag disappeared: drop its queued builds."""
        return self.store.drop_ref(repo, ref, f"{ref} was deleted")

    def repo_removed(self, repo: str) -> list[int]:
        """A repository left the config: its queued builds would never run."""
        return self.store.cancel_queued(repo, "repository removed from the config")

    def recover(self) -> list[BuildRecord]:
        """At start-up: builds a crash or shutdown left behind are queued again, once.

        Under coalescing, a recovered build whose ref already has a newer
        queued commit is superseded instead of re-run: the newer one covers it.
        """
        recovered = self.store.recover_interrupted(now=self.clock())
        for build in recovered:
            if build.status != BuildStatus.QUEUED:
                continue
            newer = self._newer_queued(build)
            if newer is not None:
                self.store.mark_cancelled(build.id, f"superseded by {newer.sha}", now=self.clock())
        return [self.store.get(b.id) or b for b in recovered]

    def _newer_queued(self, build: BuildRecord) -> BuildRecord | None:
        """Under coalescing, a queued newer commit of ``build``'s ref (it covers ``build``)."""
        if self.policy.repo(build.repo).build_every_commit:
            return None
        queued = self.store.list_builds(repo=build.repo, ref=build.ref, statuses=["queued"])
        return next((b for b in queued if b.id > build.id), None)

    # -- output ---------------------------------------------------------------

    def next_jobs(self, repos: Collection[str] | None = None) -> list[BuildRecord]:
        """Claim every build that may start now (already marked running).

        Only builds of configured repositories (``policy.repos``, or ``repos``)
        start: a repository removed by a reload keeps its queued rows, unstarted.
        """
        allowed = tuple(self.policy.repos) if repos is None else repos
        jobs: list[BuildRecord] = []
        while len(jobs) < self.policy.max_concurrent_builds:
            job = self.store.claim_next(
                max_running=self.policy.max_concurrent_builds,
                repos=allowed,
                now=self.clock(),
            )
            if job is None:
                break
            jobs.append(job)
        return jobs

    def cancellations(self) -> list[BuildRecord]:
        """Running builds to cancel (user request or superseded)."""
        return self.store.cancel_requests()

    def next_wakeup(self, after: float | None = None) -> float | None:
        """When the earliest backed-off build becomes runnable (epoch seconds).

        ``after``: the earliest still in the future, for a loop that sleeps until then.
        """
        return self.store.next_retry_at(after)

    # -- results ----------------------------------------------------------------

    def finish(self, build: BuildRecord, outcome: BuildOutcome) -> BuildStatus:
        """Record how a running build ended; returns the status it got.

        The outcome is already decided (:func:`scratchd.outcome.decide`);
        this only maps it to the store. A retryable infrastructure error is
        re-queued with backoff while attempts remain (unless, under coalescing, a
        newer commit of its ref is already queued: that one supersedes it);
        everything else is final.
        """
        now = self.clock()
        status, text = outcome.status, outcome.reason or str(outcome.status)
        step = outcome.failed_step or None
        if status == BuildStatus.PASSED:
            self.store.mark_passed(
                build.id,
                outcome.digests,
                now=now,
                tags=outcome.references,
                platforms=outcome.platform_digests,
            )
        elif status == BuildStatus.CANCELLED:
            # A cancel request (user, superseded) already wrote the reason; keep it.
            current = self.store.get(build.id)
            requested = current is not None and current.cancel_requested
            self.store.mark_cancelled(build.id, None if requested else text, now=now)
        elif status == BuildStatus.INTERRUPTED:
            self.interrupt(build, outcome.message)
        elif outcome.retryable and build.attempt < self.policy.retry_limit:
            newer = self._newer_queued(build)
            if newer is not None:  # the retry would only build what the newer commit covers
                self.store.mark_cancelled(build.id, f"superseded by {newer.sha}", now=now)
                return BuildStatus.CANCELLED
            delay = self.policy.backoff(build.attempt)
            self.store.requeue(build.id, now + delay, f"retrying in {delay:.0f}s: {text}")
            log.warning(
                "build %s: %s; retry in %.0fs", build.id, text, delay, extra=build.journal_fields
            )
            return BuildStatus.QUEUED
        elif status == BuildStatus.FAILED:
            self.store.mark_failed(build.id, text, step, now=now)
        else:
            self.store.mark_error(build.id, text, step, now=now)
            return BuildStatus.ERROR
        return status

    def interrupt(self, build: BuildRecord, reason: str = "daemon stopped") -> bool:
        """Shutdown cut the build short: not its fault, so it runs again at the next start."""
        return self.store.mark_interrupted(build.id, f"interrupted: {reason}", now=self.clock())


def _by_repo(commits: Sequence[Commit]) -> dict[str, list[Commit]]:
    groups: dict[str, list[Commit]] = {}
    for c in commits:
        groups.setdefault(c.repo, []).append(c)
    return groups


def _newest_per_ref(commits: Sequence[Commit]) -> list[Commit]:
    return list({c.ref: c for c in commits}.values())
