"""/metrics after a scripted run of a real daemon: promtool accepts it, counters match the DB."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import pytest

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401
from tests.support.services import unavailable
from tests.web.support import WebProcess, get

#: Build, then bake the build's output into a scratch image and push it (with attestations).
DEPLOY = (
    "deploy:\n  steps:\n    - internal/docker-scratch-push:\n"
    "        repository: {host}/team/app\n        tag: $WERCKER_GIT_COMMIT latest\n"
    "        cmd: /counter.txt\n"
)
COPY = 'cp counter.txt "$WERCKER_OUTPUT_DIR/"'
PUSH_YML = QUICK_YML.replace("cat counter.txt", COPY) + DEPLOY
FAILING_YML = PUSH_YML.replace(COPY, COPY + "\n          exit 3")
AUTHOR = "Test Author <author@example.invalid>"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFESTS = f"{INDEX}, application/vnd.oci.image.manifest.v1+json"


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, labels in the order the exposition prints them."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


@pytest.fixture
def scripted_run(tmp_path, make_daemon, registry):
    """A daemon that built and pushed one commit of ``app``, then failed its next commit.

    ``idle`` never built. The registry is the reference Distribution server.
    """
    app = WorkRepo(tmp_path / "app")
    app.commit("wercker.yml", files={"wercker.yml": PUSH_YML.format(host=registry.host),
                                     "counter.txt": "0\n"})  # fmt: skip
    idle = WorkRepo(tmp_path / "idle")
    idle.commit("wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    d = make_daemon(
        [
            repo_table("app", app.path, pipelines=["build", "deploy"]),
            repo_table("idle", idle.path, branches=["never"]),
        ],
        registries={registry.host: {"insecure": True}},
    ).start()
    d.wait_status(app.head(), "passed")
    bad = app.commit("breaks", files={"wercker.yml": FAILING_YML.format(host=registry.host)})
    d.wait_status(bad, "failed")
    d.registry = registry
    return d


def registry_blob_bytes(registry, repository: str, tag: str) -> tuple[int, int]:
    """(blobs, bytes) of every blob the registry holds under ``tag``: index, manifests, blobs."""
    import requests

    def manifest(reference: str) -> dict:
        r = requests.get(
            f"{registry.url}/v2/{repository}/manifests/{reference}",
            headers={"Accept": MANIFESTS},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()

    index = manifest(tag)
    blobs = {}
    for child in index["manifests"]:
        doc = manifest(child["digest"])
        for desc in [doc["config"], *doc["layers"]]:
            blobs[desc["digest"]] = desc["size"]
    return len(blobs), sum(blobs.values())


def test_metrics_agree_with_the_state_database(scripted_run):
    d = scripted_run
    web = WebProcess(d.config).start()
    try:
        r = get(web.url, "/metrics")
        builds = d.builds()
        dashboard = get(web.url, "/").text
        page = get(web.url, f"/builds/{builds[-1].id}").text
    finally:
        web.stop()
    assert r.status == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    m = samples(r.text)
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
        m['scratchd_builds_finished_total{pipeline="build+deploy",repo="app",result="passed"}']
        == passed
    )
    assert (
        m['scratchd_builds_finished_total{pipeline="build+deploy",repo="app",result="failed"}']
        == failed
    )
    assert m['scratchd_builds_started_total{pipeline="build+deploy",repo="app"}'] == started
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
        "engine",
        "le",
        "version",
    }
    assert not any(b.sha[:8] in r.text for b in builds)
    assert_pushes_agree(d, builds, m)
    assert_trigger_latency_agrees(builds, m)
    # The commit's author, from git, on the dashboard's "broken since" tile and the build page.
    bad = builds[-1]
    assert [b.commit_author for b in builds] == [AUTHOR, AUTHOR]
    assert (
        f'broken since <a href="/builds/{bad.id}">#{bad.id}</a> '
        f"(<code>{bad.sha[:8]}</code>, {html.escape(AUTHOR)})" in dashboard
    )
    assert f"<dt>author</dt><dd>{html.escape(AUTHOR)}</dd>" in page
    promtool_accepts(r.text)


def promtool_accepts(text: str) -> None:
    if shutil.which("promtool") is None:
        unavailable("promtool is not installed (apt-get install prometheus)")
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr


def assert_pushes_agree(d, builds, m) -> None:
    """Push counters = the pushes table = what the registry holds (judged by its own API)."""
    store = d.store()
    rows = store.db.read("SELECT * FROM pushes")
    passed = next(b for b in builds if b.status == "passed")
    assert [(r["build_id"], r["registry"], r["repository"]) for r in rows] == [
        (passed.id, d.registry.host, "team/app")
    ], "one push: the failing build never reached its deploy"
    blobs, size = registry_blob_bytes(d.registry, "team/app", passed.sha)
    assert (rows[0]["uploaded_blobs"], rows[0]["uploaded_bytes"]) == (blobs, size)
    host = d.registry.host
    for outcome in ("uploaded", "existed", "mounted"):
        key = f'{{outcome="{outcome}",registry="{host}"}}'
        assert m[f"scratchd_push_blobs_total{key}"] == sum(r[f"{outcome}_blobs"] for r in rows)
        assert m[f"scratchd_push_bytes_total{key}"] == sum(r[f"{outcome}_bytes"] for r in rows)
    assert m[f'scratchd_push_bytes_total{{outcome="uploaded",registry="{host}"}}'] == size > 0
    assert m[f'scratchd_push_duration_seconds_count{{registry="{host}"}}'] == 1
    total = m[f'scratchd_push_duration_seconds_sum{{registry="{host}"}}']
    assert total == pytest.approx(rows[0]["seconds"]) and 0 < total < 60


def assert_trigger_latency_agrees(builds, m) -> None:
    """Both builds were seen by the watcher (the start-up scan, then inotify) before queueing."""
    latencies = [b.created_at - b.seen_at for b in builds if b.seen_at is not None]
    assert len(latencies) == len(builds) == 2
    assert all(0 <= x < 5 for x in latencies), latencies
    assert m['scratchd_trigger_latency_seconds_count{repo="app"}'] == 2
    assert m['scratchd_trigger_latency_seconds_sum{repo="app"}'] == pytest.approx(sum(latencies))


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


def test_engine_health_and_slots_come_from_the_daemons_engine_status(tmp_path):
    """The pool as the daemon's own writer leaves it in engines.json: up/down, slots taken."""
    from scratchd.engine_status import EngineStatusFile
    from scratchd.placement import Placer
    from scratchd.store import StateDir, Store
    from tests.web.support import write_config

    state = StateDir(tmp_path / "s")
    Store(state.db).close()
    status = EngineStatusFile(state.root, {"alpha": "tcp://10.0.0.1:2375", "beta": ""})
    placer = Placer([("alpha", 3, ()), ("beta", 2, ())], on_change=status.update)
    status.placer = placer
    placer.place("app", "1")
    placer.place("app", "2")
    placer.mark("beta", False)  # its probe failed: rewritten at once
    web = WebProcess(write_config(tmp_path / "c.toml", state.root)).start()
    try:
        text = get(web.url, "/metrics").text
        dashboard = get(web.url, "/").text
    finally:
        web.stop()
    m = samples(text)
    assert m['scratchd_engine_up{engine="alpha"}'] == 1
    assert m['scratchd_engine_up{engine="beta"}'] == 0
    # Placement fills the least loaded engine that is up: both builds went to alpha.
    assert m['scratchd_engine_builds_running{engine="alpha"}'] == 2
    assert m['scratchd_engine_capacity{engine="alpha"}'] == 3
    assert m['scratchd_engine_capacity{engine="beta"}'] == 2
    assert "engine beta: " in dashboard and "0/2 <strong>down</strong>" in dashboard
    assert "engine alpha: " in dashboard and "2/3</li>" in dashboard
    promtool_accepts(text)


def test_no_engine_pool_means_no_engine_series(tmp_path):
    """Without engines.json (no pool, or a torn file) the families are empty, never an error."""
    from scratchd.store import StateDir, Store
    from tests.web.support import write_config

    state = StateDir(tmp_path / "s")
    Store(state.db).close()
    state.engines.write_text('{"engines": [')  # torn
    web = WebProcess(write_config(tmp_path / "c.toml", state.root)).start()
    try:
        r = get(web.url, "/metrics")
    finally:
        web.stop()
    assert r.status == 200
    assert "scratchd_engine_up{" not in r.text
