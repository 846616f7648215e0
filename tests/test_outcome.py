"""One BuildOutcome per build, decided in one place, recorded by the scheduler as is."""

from __future__ import annotations

import pytest

from scratchd.errors import (
    AuthError,
    BackendError,
    BuildCancelled,
    PipelineError,
    StepTimeout,
)
from scratchd.models import BuildStatus, Commit, Trigger
from scratchd.outcome import StepResult, decide
from scratchd.redact import Redactor
from scratchd.scheduler import Policy, Scheduler
from scratchd.store import Store


def claimed(tmp_path, retry_limit: int = 3):
    from scratchd.scheduler import RepoPolicy

    store = Store(tmp_path / "state.db")
    sched = Scheduler(store, Policy(retry_limit=retry_limit, repos={"app": RepoPolicy()}))
    sched.submit([Commit("app", "refs/heads/main", "1" * 40)], Trigger.PUSH)
    (job,) = sched.next_jobs()
    return sched, job


FAILED_STEP = StepResult("build", "compile", "failed", 1.0, exit_code=4, message="exit 4")


@pytest.mark.parametrize(
    ("kwargs", "status", "retryable"),
    [
        ({}, BuildStatus.PASSED, False),
        ({"failure": FAILED_STEP}, BuildStatus.FAILED, False),
        ({"cancelled": True}, BuildStatus.CANCELLED, False),
        ({"error": BuildCancelled("stop")}, BuildStatus.CANCELLED, False),
        ({"error": StepTimeout("too slow")}, BuildStatus.FAILED, False),
        ({"error": PipelineError("bad yml")}, BuildStatus.FAILED, False),
        ({"error": BackendError("docker down")}, BuildStatus.ERROR, True),
        ({"error": AuthError("denied", status=401)}, BuildStatus.ERROR, False),
        ({"error": KeyError("bug")}, BuildStatus.ERROR, False),
    ],
)
def test_decide_gives_each_kind_of_end_one_status(kwargs, status, retryable):
    outcome = decide("7", **kwargs)
    assert (outcome.status, outcome.retryable) == (status, retryable)


def test_a_failed_step_is_named_with_its_exit_code():
    outcome = decide("7", failure=FAILED_STEP)
    assert (outcome.failed_pipeline, outcome.failed_step, outcome.exit_code) == (
        "build",
        "compile",
        4,
    )
    assert outcome.reason == "step build/compile failed: exit 4"


def test_a_bug_is_an_internal_error_that_shutdown_does_not_excuse():
    outcome = decide("7", error=KeyError("bug"))
    assert outcome.internal and outcome.message.startswith("internal error: ")
    assert not outcome.cut_short and decide(error=BackendError("x")).cut_short


def test_error_messages_are_masked():
    outcome = decide(error=BackendError("token s3cr3t-tok"), mask=Redactor(["s3cr3t-tok"]).redact)
    assert outcome.message == "token ***"


def test_scheduler_records_a_failed_step(tmp_path):
    sched, job = claimed(tmp_path)
    assert sched.finish(job, decide(failure=FAILED_STEP)) == BuildStatus.FAILED
    record = sched.store.get(job.id)
    assert record.status == BuildStatus.FAILED and record.failed_step == "compile"
    assert record.message == "step build/compile failed: exit 4"


def test_scheduler_retries_only_retryable_errors(tmp_path):
    sched, job = claimed(tmp_path)
    assert sched.finish(job, decide(error=BackendError("down"))) == BuildStatus.QUEUED
    sched, job = claimed(tmp_path / "b")
    assert sched.finish(job, decide(error=AuthError("no", status=401))) == BuildStatus.ERROR


def test_scheduler_records_an_internal_error(tmp_path):
    sched, job = claimed(tmp_path)
    assert sched.finish(job, decide(error=RuntimeError("boom"))) == BuildStatus.ERROR
    assert sched.store.get(job.id).message == "internal error: boom"


def test_scheduler_records_an_interrupted_build_to_run_again(tmp_path):
    sched, job = claimed(tmp_path)
    outcome = decide(error=BuildCancelled("cancelled")).interrupted("daemon stopped")
    assert sched.finish(job, outcome) == BuildStatus.INTERRUPTED
    record = sched.store.get(job.id)
    assert record.status == BuildStatus.INTERRUPTED and "daemon stopped" in record.message


def test_scheduler_records_passed_digests(tmp_path):
    sched, job = claimed(tmp_path)
    pushed = StepResult("deploy", "push", "passed", 1.0, digest="sha256:abc")
    assert sched.finish(job, decide(steps=(pushed,))) == BuildStatus.PASSED
    assert sched.store.get(job.id).images == ("sha256:abc",)
