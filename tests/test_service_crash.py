"""Crash safety and bursts: ``kill -9`` mid-build and under commits, 50 commits in 10 repos.

Each build's only step appends its commit to a ledger file *after* its work,
so a build recorded ``passed`` whose commit is not in the ledger would be a
build marked passed that never finished.
"""

from __future__ import annotations

import threading
import time

from tests.git.repos import WorkRepo
from tests.support.daemon import Daemon, make_daemon_fixture, repo_table  # noqa: F401

LEDGER_YML = """\
build:
  steps:
    - script:
        name: work
        code: |
          sleep {sleep}
          echo "$WERCKER_GIT_COMMIT" >> {ledger}
"""


def ledger_project(path, ledger, sleep="0.1") -> WorkRepo:
    repo = WorkRepo(path)
    yml = LEDGER_YML.format(sleep=sleep, ledger=ledger)
    repo.commit(f"{path.name}: wercker.yml", files={"wercker.yml": yml, "counter.txt": "0\n"})
    return repo


def settled(d: Daemon) -> bool:
    store = d.store()
    return not store.queued() and not store.running()


def assert_sound(d: Daemon, ledger) -> None:
    """Integrity ok; every passed build's commit really finished its step."""
    assert d.store().integrity_check() == "ok"
    finished = set(ledger.read_text().split()) if ledger.exists() else set()
    passed = [b for b in d.builds() if b.status == "passed"]
    assert passed
    assert {b.sha for b in passed} <= finished
    assert all(b.started_at and b.finished_at for b in passed)


def test_kill9_mid_build_and_while_commits_land_then_restart(tmp_path, make_daemon):
    ledger = tmp_path / "ledger"
    a = ledger_project(tmp_path / "a", ledger, sleep="1")
    b = ledger_project(tmp_path / "b", ledger, sleep="0.2")
    repos = [repo_table("a", a.path), repo_table("b", b.path)]
    d = make_daemon(repos).start()
    d.wait(lambda: d.store().running(), what="a running build")
    d.wait_status(a.head(), "running")

    landed: list[str] = []

    def commit_loop():
        for _ in range(6):
            landed.append(b.commit())
            time.sleep(0.05)

    writer = threading.Thread(target=commit_loop)
    writer.start()
    time.sleep(0.1)
    d.kill9()  # mid-build of a, while b's commits land
    writer.join()
    interrupted = next(x for x in d.builds() if x.sha == a.head())
    assert interrupted.status == "running"  # what a crash leaves behind
    downtime = [a.commit(), a.commit()]

    d.start()
    d.wait(lambda: settled(d) and d.builds(), timeout=60, what="queue drained")
    rerun = d.store().get(interrupted.id)
    assert (rerun.status, rerun.interruptions) in {("passed", 1), ("cancelled", 1)}
    if rerun.status == "cancelled":
        assert "superseded" in rerun.message  # coalesced behind the downtime commits
    d.wait_status(downtime[-1], "passed")
    d.wait_status(landed[-1], "passed")
    assert_sound(d, ledger)
    assert not [x for x in d.builds() if x.status in ("failed", "error", "running")]


def test_kill9_with_build_every_commit_builds_every_commit_once(tmp_path, make_daemon):
    ledger = tmp_path / "ledger"
    w = ledger_project(tmp_path / "w", ledger, sleep="0.3")
    d = make_daemon([repo_table("w", w.path, build_every_commit=True)]).start()
    first = [w.commit() for _ in range(3)]
    d.wait(lambda: d.store().running(), what="a running build")
    d.kill9()
    during = [w.commit() for _ in range(3)]
    d.start()
    d.wait(lambda: settled(d), timeout=60, what="queue drained")
    built = [x.sha for x in d.builds() if x.status == "passed"]
    for sha in first + during:
        assert built.count(sha) == 1, sha
    assert_sound(d, ledger)


def burst(tmp_path, make, *, every: bool) -> tuple[Daemon, list[WorkRepo], list[list[str]]]:
    ledger = tmp_path / "ledger"
    repos = [ledger_project(tmp_path / f"r{i}", ledger, sleep="0.1") for i in range(10)]
    tables = [repo_table(f"r{i}", r.path, build_every_commit=every) for i, r in enumerate(repos)]
    d = make(tables, max_concurrent_builds=4).start()
    d.wait(lambda: len([b for b in d.builds() if b.status == "passed"]) == 10, timeout=90)
    commits: list[list[str]] = [[] for _ in repos]
    for _ in range(5):  # 50 commits, interleaved over the repositories, while builds run
        for i, repo in enumerate(repos):
            commits[i].append(repo.commit())
    d.wait(
        lambda: (
            settled(d)
            and all(d.builds(repo=f"r{i}")[-1].sha == c[-1] for i, c in enumerate(commits))
        ),
        timeout=120,
        what="burst built",
    )
    assert_sound(d, ledger)
    return d, _, commits


def test_burst_coalesced_builds_each_final_commit_exactly_once(tmp_path, make_daemon):
    d, _, commits = burst(tmp_path, make_daemon, every=False)
    for i, shas in enumerate(commits):
        builds = d.builds(repo=f"r{i}")[1:]  # after the first-sight build
        assert [b.sha for b in builds if b.status == "passed"].count(shas[-1]) == 1
        for b in builds:
            assert b.sha in shas
            assert b.status == "passed" or (b.status == "cancelled" and "superseded" in b.message)
        assert d.store().get_ref(f"r{i}", "refs/heads/main") == shas[-1]


def test_burst_build_every_commit_builds_each_commit_exactly_once(tmp_path, make_daemon):
    d, _, commits = burst(tmp_path, make_daemon, every=True)
    for i, shas in enumerate(commits):
        builds = d.builds(repo=f"r{i}")[1:]
        assert [(b.sha, b.status) for b in builds] == [(s, "passed") for s in shas]
