"""Random operation sequences against scheduler + store: the queue's promises always hold.

Hypothesis drives pushes, claims, outcomes (pass, step failure, infrastructure
error), user cancels, clock jumps and simulated crashes; after every step
the database must satisfy the invariants, and after draining, every branch's
newest commit must have been built exactly once.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchd.errors import BackendError, StepFailed
from scratchd.models import BuildStatus, Commit, Trigger
from scratchd.outcome import decide
from scratchd.scheduler import Policy, RepoPolicy, Scheduler
from scratchd.store import Store

REPOS = {"coalesce": RepoPolicy(), "every": RepoPolicy(build_every_commit=True)}
REFS = ("refs/heads/main", "refs/heads/dev")
MAX = 2

ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("push"), st.sampled_from(list(REPOS)), st.sampled_from(REFS), st.integers(1, 3)
        ),
        st.tuples(st.just("start")),
        st.tuples(st.just("finish"), st.integers(0, 5), st.sampled_from(["pass", "fail", "infra"])),
        st.tuples(st.just("tick"), st.integers(1, 200)),
        st.tuples(st.just("crash")),
    ),
    max_size=40,
)


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def check(store: Store, pushed: dict) -> None:
    builds = store.list_builds()
    running = [b for b in builds if b.status == BuildStatus.RUNNING]
    assert len(running) <= MAX
    assert len({(b.repo, b.ref) for b in running}) == len(running)
    queued = Counter((b.repo, b.ref) for b in builds if b.status == BuildStatus.QUEUED)
    assert all(n <= 1 for (repo, _), n in queued.items() if repo == "coalesce")
    for b in builds:
        if b.status == BuildStatus.PASSED:
            assert b.started_at is not None and b.finished_at >= b.started_at
        assert b.attempt <= 3 + b.interruptions
    superseded = {b.sha for b in builds if (b.message or "").startswith("superseded")}
    for (repo, ref), shas in pushed.items():
        assert shas[-1] not in superseded  # the newest commit is never dropped
        if repo == "every":
            assert {b.sha for b in builds if b.repo == repo and b.ref == ref} == set(shas)


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(ops)
def test_invariants_hold_and_every_newest_commit_is_built_once(operations):
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        policy = Policy(
            MAX, retry_limit=3, retry_delay=10, retry_max_delay=40, repos=MappingProxyType(REPOS)
        )
        store = Store(Path(tmp) / "s.db")
        sched = Scheduler(store, policy, clock)
        pushed: dict[tuple[str, str], list[str]] = {}
        serial = 0
        for op in operations:
            if op[0] == "push":
                _, repo, ref, count = op
                commits = []
                for _ in range(count):
                    serial += 1
                    commits.append(Commit(repo, ref, f"{serial:040x}"))
                pushed.setdefault((repo, ref), []).extend(c.sha for c in commits)
                sched.submit(commits, Trigger.PUSH)
            elif op[0] == "start":
                sched.next_jobs()
            elif op[0] == "finish":
                running = store.running()
                if running:
                    build = running[op[1] % len(running)]
                    error = {"pass": None, "fail": StepFailed("x"), "infra": BackendError("y")}[
                        op[2]
                    ]
                    sched.finish(build, decide(error=error))
            elif op[0] == "tick":
                clock.now += op[1]
            elif op[0] == "crash":
                sched.recover()
            check(store, pushed)
        # drain: running builds pass, then everything still queued gets built and passes
        for _ in range(500):
            for job in store.running():
                sched.finish(job, decide())
            clock.now += 50
            if not sched.next_jobs() and not store.queued() and not store.running():
                break
        check(store, pushed)
        builds = store.list_builds()
        assert not store.queued() and not store.running()
        for (repo, ref), shas in pushed.items():
            final = [b for b in builds if (b.repo, b.ref, b.sha) == (repo, ref, shas[-1])]
            assert len(final) == 1, (repo, ref, final)
            assert final[0].status in (BuildStatus.PASSED, BuildStatus.FAILED, BuildStatus.ERROR)
        assert store.integrity_check() == "ok"
        store.close()
