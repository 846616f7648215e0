"""/metrics after a scripted run of a real daemon: promtool accepts it, counters match the DB."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401
from tests.support.services import unavailable
from tests.web.support import WebProcess, get

FAILING_YML = QUICK_YML + "          exit 3\n"


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, labels in the order the exposition prints them."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.fixture
def scripted_run(tmp_path, make_daemon):
    """A daemon that built one passing and one failing commit of ``app``; ``idle`` never built."""
    app = WorkRepo(tmp_path / "app")
    app.commit("wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    idle = WorkRepo(tmp_path / "idle")
    idle.commit("wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    d = make_daemon(
        [repo_table("app", app.path), repo_table("idle", idle.path, branches=["never"])]
    ).start()
    d.wait_status(app.head(), "passed")
    bad = app.commit("breaks", files={"wercker.yml": FAILING_YML})
    d.wait_status(bad, "failed")
    return d


def test_metrics_agree_with_the_state_database(scripted_run):
    d = scripted_run
    web = WebProcess(d.config).start()
    try:
        r = get(web.url, "/metrics")
    finally:
        web.stop()
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = samples(r.text)
    builds = d.builds()
    passed = sum(b.status == "passed" for b in builds)
    failed = sum(b.status == "failed" for b in builds)
    started = sum(b.started_at is not None for b in builds)
    assert (passed, failed) == (1, 1)
    # The daemon records the commit subject and executor the build page shows.
    assert [(b.commit_subject, b.executor) for b in builds] == [
        ("wercker.yml", "host"),
        ("breaks", "host"),
    ]
    assert (
        m['scratchd_builds_finished_total{pipeline="build",repo="app",result="passed"}'] == passed
    )
    assert (
        m['scratchd_builds_finished_total{pipeline="build",repo="app",result="failed"}'] == failed
    )
    assert m['scratchd_builds_started_total{pipeline="build",repo="app"}'] == started
    # Pre-created at 0 for a configured repository that never built.
    assert m['scratchd_builds_started_total{pipeline="build",repo="idle"}'] == 0
    assert m['scratchd_builds_finished_total{pipeline="build",repo="idle",result="error"}'] == 0
    durations = [b.duration for b in builds if b.duration is not None]
    assert m['scratchd_build_duration_seconds_count{repo="app"}'] == len(durations)
    assert m['scratchd_build_duration_seconds_sum{repo="app"}'] == pytest.approx(sum(durations))
    assert m['scratchd_queue_wait_seconds_count{repo="app"}'] == started
    assert m["scratchd_queue_depth"] == 0
    assert m['scratchd_builds_running{executor="host"}'] == 0
    assert m['scratchd_executor_capacity{executor="host"}'] == 2
    assert m["scratchd_daemon_up"] == 1
    assert m['scratchd_build_info{version="0.1.0"}'] == 1
    newest_failed = max(b.finished_at for b in builds if b.status == "failed")
    last = m['scratchd_last_build_timestamp_seconds{repo="app",result="failed"}']
    assert last == pytest.approx(newest_failed)
    # No label names a commit, a branch or a build id.
    labels = set(re.findall(r"(\w+)=\"", r.text))
    assert labels <= {
        "repo",
        "pipeline",
        "result",
        "executor",
        "registry",
        "outcome",
        "le",
        "version",
    }
    assert not any(b.sha[:8] in r.text for b in builds)
    if shutil.which("promtool") is None:
        unavailable("promtool is not installed (apt-get install prometheus)")
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=r.text, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_push_figures_come_from_the_pushes_table(tmp_path):
    from scratchd.models import Commit, Trigger
    from scratchd.store import StateDir, Store
    from tests.web.support import write_config

    store = Store(StateDir(tmp_path / "s").db)
    b = store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)[0]
    store.record_push(b.id, "quay.io", 1.5, {"uploaded": (2, 1000), "existed": (1, 50)})
    store.record_push(b.id, "quay.io", 0.2, {"mounted": (3, 700)})
    store.set_commit_facts(b.id, seen_at=b.created_at - 0.3)
    store.close()
    web = WebProcess(write_config(tmp_path / "c.toml", tmp_path / "s")).start()
    try:
        m = samples(get(web.url, "/metrics").text)
    finally:
        web.stop()
    assert m['scratchd_push_bytes_total{outcome="uploaded",registry="quay.io"}'] == 1000
    assert m['scratchd_push_blobs_total{outcome="existed",registry="quay.io"}'] == 1
    assert m['scratchd_push_bytes_total{outcome="mounted",registry="quay.io"}'] == 700
    assert m['scratchd_push_duration_seconds_count{registry="quay.io"}'] == 2
    assert m['scratchd_push_duration_seconds_bucket{le="0.5",registry="quay.io"}'] == 1
    assert m['scratchd_trigger_latency_seconds_bucket{le="0.5",repo="app"}'] == 1
    assert m['scratchd_trigger_latency_seconds_bucket{le="0.25",repo="app"}'] == 0
    assert m["scratchd_queue_depth"] == 1
