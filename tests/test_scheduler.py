"""Scheduler policies on a real SQLite store with an injected clock."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from scratchd.errors import (
    AuthError,
    BackendError,
    BuildCancelled,
    PipelineError,
    RegistryError,
    StepFailed,
)
from scratchd.models import BuildStatus, Commit, Trigger
from scratchd.outcome import StepResult, decide
from scratchd.redact import Redactor
from scratchd.scheduler import Policy, RepoPolicy, Scheduler
from scratchd.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def c(n: int, ref: str = "main", repo: str = "app") -> Commit:
    return Commit(repo=repo, ref=f"refs/heads/{ref}", sha=f"{n:040x}")


def make(tmp_path, max_builds: int = 2, **repos: RepoPolicy) -> tuple[Scheduler, Clock]:
    clock = Clock()
    policy = Policy(
        max_concurrent_builds=max_builds,
        retry_limit=3,
        retry_delay=10,
        retry_max_delay=25,
        repos=MappingProxyType(repos or {"app": RepoPolicy()}),
    )
    return Scheduler(Store(tmp_path / "s.db"), policy, clock), clock


def shas(builds) -> list[str]:
    return [b.sha[-1] for b in builds]


def test_coalescing_builds_only_the_newest_commit(tmp_path):
    sched, _ = make(tmp_path)
    sub = sched.submit([c(1), c(2), c(3)], Trigger.PUSH)
    assert shas(sub.queued) == ["3"]  # older commits of one push never queue
    running = sched.next_jobs()
    sched.submit([c(4)], Trigger.PUSH)
    sched.submit([c(5)], Trigger.PUSH)  # supersedes 4 while 3 runs
    assert sched.next_jobs() == []  # one build per branch
    sched.finish(running[0], decide())
    (next_job,) = sched.next_jobs()
    assert next_job.sha[-1] == "5"
    four = next(b for b in sched.store.list_builds() if b.sha.endswith("4"))
    assert four.status == BuildStatus.CANCELLED and four.message == f"superseded by {c(5).sha}"
    assert sched.store.get_ref("app", "refs/heads/main") == c(5).sha


def test_build_every_commit_in_order(tmp_path):
    sched, _ = make(tmp_path, app=RepoPolicy(build_every_commit=True))
    sched.submit([c(1), c(2)], Trigger.PUSH)
    sched.submit([c(3)], Trigger.PUSH)
    order = []
    for _ in range(5):
        jobs = sched.next_jobs()
        assert len(jobs) <= 1
        for job in jobs:
            order.append(job.sha[-1])
            sched.finish(job, decide())
    assert order == ["1", "2", "3"]


def test_global_limit_and_one_per_branch(tmp_path):
    sched, _ = make(tmp_path, max_builds=2, app=RepoPolicy(), lib=RepoPolicy())
    sched.submit([c(1, "main"), c(2, "dev"), c(3, "main", "lib")], Trigger.PUSH)
    first = sched.next_jobs()
    assert len(first) == 2 and sched.next_jobs() == []
    sched.finish(first[0], decide())
    assert len(sched.next_jobs()) == 1


def test_unconfigured_repos_are_not_started(tmp_path):
    sched, _ = make(tmp_path, app=RepoPolicy())
    sched.submit([c(1, repo="removed"), c(2)], Trigger.PUSH)
    assert [j.repo for j in sched.next_jobs()] == ["app"]


def test_cancel_superseded_flags_the_running_build(tmp_path):
    sched, _ = make(tmp_path, app=RepoPolicy(cancel_superseded=True))
    sched.submit([c(1)], Trigger.PUSH)
    (running,) = sched.next_jobs()
    sub = sched.submit([c(2)], Trigger.PUSH)
    assert [b.id for b in sub.cancel] == [running.id]
    assert [b.id for b in sched.cancellations()] == [running.id]
    # the daemon passes the record it claimed; the request's reason survives
    assert sched.finish(running, decide(error=BuildCancelled("stopped"))) == BuildStatus.CANCELLED
    assert sched.store.get(running.id).message == f"superseded by {c(2).sha}"
    assert shas(sched.next_jobs()) == ["2"]


def test_without_cancel_superseded_running_builds_finish(tmp_path):
    sched, _ = make(tmp_path)
    sched.submit([c(1)], Trigger.PUSH)
    sched.next_jobs()
    assert sched.submit([c(2)], Trigger.PUSH).cancel == ()
    assert sched.cancellations() == []


def test_infrastructure_errors_retry_with_bounded_backoff(tmp_path):
    sched, clock = make(tmp_path)
    sched.submit([c(1)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    assert sched.finish(job, decide(error=BackendError("docker down"))) == BuildStatus.QUEUED
    assert sched.next_wakeup() == clock.now + 10
    assert sched.next_jobs() == []
    clock.now += 10
    (job,) = sched.next_jobs()
    assert job.attempt == 2 and job.id == 1
    assert sched.finish(job, decide(error=RegistryError("503", status=503))) == BuildStatus.QUEUED
    assert sched.next_wakeup() == clock.now + 20
    clock.now += 20
    (job,) = sched.next_jobs()
    assert job.attempt == 3
    still_down = decide(error=BackendError("still down"))
    assert sched.finish(job, still_down) == BuildStatus.ERROR  # limit reached
    final = sched.store.get(1)
    assert final.status == BuildStatus.ERROR and final.message == "still down"


def test_an_infrastructure_retry_is_superseded_by_a_newer_queued_commit(tmp_path):
    """Under coalescing one build per ref waits: the retry would only redo an older commit."""
    sched, _ = make(tmp_path)
    sched.submit([c(1)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    sched.submit([c(2)], Trigger.PUSH)  # lands while 1 runs
    assert sched.finish(job, decide(error=BackendError("docker down"))) == BuildStatus.CANCELLED
    one = sched.store.get(job.id)
    assert one.message == f"superseded by {c(2).sha}"
    assert shas(sched.store.queued()) == ["2"]


def test_with_build_every_commit_an_infrastructure_retry_stays_queued(tmp_path):
    sched, _ = make(tmp_path, app=RepoPolicy(build_every_commit=True))
    sched.submit([c(1)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    sched.submit([c(2)], Trigger.PUSH)
    assert sched.finish(job, decide(error=BackendError("docker down"))) == BuildStatus.QUEUED
    assert sorted(shas(sched.store.queued())) == ["1", "2"]


def test_backoff_is_capped():
    policy = Policy(retry_delay=10, retry_max_delay=25)
    assert [policy.backoff(a) for a in (1, 2, 3, 4)] == [10, 20, 25, 25]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (StepFailed("exit 1", step="make"), BuildStatus.FAILED),
        (PipelineError("bad wercker.yml"), BuildStatus.FAILED),
        (AuthError("denied", status=401), BuildStatus.ERROR),  # not retryable
        (RuntimeError("bug"), BuildStatus.ERROR),
    ],
)
def test_non_retryable_outcomes(tmp_path, error, status):
    sched, _ = make(tmp_path)
    sched.submit([c(1)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    assert sched.finish(job, decide(error=error)) == status
    record = sched.store.get(job.id)
    assert record.status == status and record.attempt == 1
    if isinstance(error, StepFailed):
        assert record.failed_step == "make"


def test_messages_are_redacted(tmp_path):
    sched, _ = make(tmp_path)
    sched.submit([c(1)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    error = StepFailed("login with hunter22 failed")
    sched.finish(job, decide(error=error, mask=Redactor(["hunter22"]).redact))
    assert sched.store.get(job.id).message == "login with *** failed"


def test_pass_records_images(tmp_path):
    sched, _ = make(tmp_path)
    sched.submit([c(1)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    pushed = StepResult("deploy", "push", "passed", 1.0, digest="r/app@sha256:1")
    assert sched.finish(job, decide(steps=(pushed,))) == BuildStatus.PASSED
    assert sched.store.get(job.id).images == ("r/app@sha256:1",)


def test_pass_indexes_the_pushed_index_and_its_platform_manifest(tmp_path):
    sched, _ = make(tmp_path)
    sched.submit([c(1)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    index, platform = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    pushed = StepResult("deploy", "push", "passed", 1.0, digest=index, platform=platform)
    sched.finish(job, decide(steps=(pushed,)))
    assert [b.id for b in sched.store.builds_with_digest(platform)] == [job.id]
    assert [b.id for b in sched.store.builds_with_digest(index)] == [job.id]


def test_recover_and_ref_deleted(tmp_path):
    sched, _ = make(tmp_path)
    sched.submit([c(1), c(2, "gone")], Trigger.PUSH)
    (job, _other) = sched.next_jobs()
    assert job.sha[-1] == "1"
    sched.submit([c(3, "gone")], Trigger.PUSH)
    # both were running at the "crash"; 2 is superseded by the newer queued 3
    recovered = sched.recover()
    assert [(b.id, b.status) for b in recovered] == [(1, "queued"), (2, "cancelled")]
    assert recovered[1].message == f"superseded by {c(3, 'gone').sha}"
    assert sched.ref_deleted("app", "refs/heads/gone") == [3]


def test_recover_keeps_every_commit_when_asked(tmp_path):
    sched, _ = make(tmp_path, app=RepoPolicy(build_every_commit=True))
    sched.submit([c(1)], Trigger.PUSH)
    sched.next_jobs()
    sched.submit([c(2)], Trigger.PUSH)
    assert [(b.id, b.status) for b in sched.recover()] == [(1, "queued")]
    assert shas(sched.next_jobs()) == ["1"]


def test_policy_from_config(tmp_path):
    from scratchd.config import parse_config

    config = parse_config(
        "[daemon]\nmax_concurrent_builds = 4\nretry_delay = '5s'\n"
        "[[repo]]\nname = 'a'\npath = '/a'\nbuild_every_commit = true\n",
        tmp_path / "c.toml",
    )
    policy = Policy.from_config(config)
    assert policy.max_concurrent_builds == 4 and policy.retry_delay == 5
    assert policy.repo("a").build_every_commit and not policy.repo("b").build_every_commit


def test_with_engines_every_slot_and_one_prepared_build_per_engine_may_run(tmp_path):
    from scratchd.config import parse_config

    engine = "[[engine]]\nname = '{}'\nurl = 'unix:///{}.sock'\ncapacity = {}\n"
    config = parse_config(
        "[daemon]\nmax_concurrent_builds = 9\n"
        + engine.format("a", "a", 2)
        + engine.format("b", "b", 1),
        tmp_path / "c.toml",
    )
    # 3 slots; the build behind each engine's slots is checked out while it waits.
    assert Policy.from_config(config).max_concurrent_builds == 5


def test_cancel_without_request_and_interrupt(tmp_path):
    sched, _ = make(tmp_path)
    sched.submit([c(1), c(2, "dev")], Trigger.PUSH)
    one, two = sched.next_jobs()
    sched.finish(one, decide(error=BuildCancelled("step timed out waiting for cancel")))
    assert sched.store.get(one.id).message == "step timed out waiting for cancel"
    assert sched.interrupt(two, "SIGTERM after 30s grace")
    assert sched.store.get(two.id).status == BuildStatus.INTERRUPTED
    assert [b.id for b in sched.recover()] == [two.id]


def test_no_configured_repos_starts_nothing(tmp_path):
    sched = Scheduler(Store(tmp_path / "s.db"), Policy(), Clock())
    sched.submit([c(1)], Trigger.PUSH)
    assert sched.next_jobs() == []
    assert [j.repo for j in sched.next_jobs(repos=["app"])] == ["app"]


def test_manual_trigger_of_an_old_commit_supersedes_nothing(tmp_path):
    sched, _ = make(tmp_path, app=RepoPolicy(cancel_superseded=True))
    sched.submit([c(5)], Trigger.PUSH)
    (running,) = sched.next_jobs()
    sched.submit([c(6)], Trigger.PUSH)  # a push does flag the running build
    assert [b.id for b in sched.cancellations()] == [running.id]
    sched.finish(running, decide(error=BuildCancelled("cancelled")))
    sub = sched.submit([c(1)], Trigger.MANUAL, update_ref=False)
    assert sub.cancel == ()
    queued = {b.sha[-1]: b.status for b in sched.store.queued()}
    assert queued == {"6": BuildStatus.QUEUED, "1": BuildStatus.QUEUED}
    assert sched.store.get_ref("app", "refs/heads/main") == c(6).sha


def test_a_removed_repository_loses_its_queued_builds_only(tmp_path):
    sched, _ = make(tmp_path, max_builds=1, gone=RepoPolicy(), kept=RepoPolicy())
    sched.submit([c(1, repo="gone")], Trigger.PUSH)
    (running,) = sched.next_jobs()
    sched.submit([c(2, "dev", repo="gone"), c(3, repo="kept")], Trigger.PUSH)

    assert sched.repo_removed("gone") == [2]

    store = sched.store
    assert store.get(2).status == BuildStatus.CANCELLED
    assert store.get(2).message == "repository removed from the config"
    assert store.get(running.id).status == BuildStatus.RUNNING  # running builds carry on
    assert store.get(3).status == BuildStatus.QUEUED
    assert store.get_ref("gone", "refs/heads/dev") == c(2, "dev", repo="gone").sha
