"""The daemon with a pool of three engines on other "hosts" (network namespaces, TLS).

Each test runs a real ``scratchd run`` with ``[[engine]]`` blocks and judges
it by the state database, ``engines.json``, the CLI's output and the engines
themselves (their containers and their dockerd logs).
"""

from __future__ import annotations

import itertools
import json
import re
import signal
import subprocess
import sys
import time

import docker.errors

from tests.git.repos import WorkRepo
from tests.support.daemon import Daemon, make_daemon_fixture, repo_table  # noqa: F401

SECRET = "s3cret-token-value-42"

TIMED_YML = """\
box: {box}
build:
  steps:
    - script:
        name: timed
        code: |
          echo "start $(cut -d' ' -f1 /proc/uptime)"
          echo "token is $TOKEN"
          sleep {sleep}
          echo "end $(cut -d' ' -f1 /proc/uptime)"
          echo done > "$WERCKER_OUTPUT_DIR/done"
"""


def project(path, box, sleep=2) -> WorkRepo:
    repo = WorkRepo(path)
    repo.commit("wercker.yml", files={"wercker.yml": TIMED_YML.format(box=box, sleep=sleep)})
    return repo


def engine_table(host, **kw) -> dict:
    c = host.certs
    tls = {"ca": str(c.ca), "cert": str(c.client_cert), "key": str(c.client_key)}
    return {"name": host.name, "url": host.url, "tls": tls, "capacity": 1, **kw}


def cli(d: Daemon, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchd", *args, "--config", str(d.config)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def engines_json(d: Daemon) -> dict:
    try:
        return json.loads((d.state.root / "engines.json").read_text())
    except (OSError, ValueError):
        return {}


def engine_of(d: Daemon, build_id: int) -> str | None:
    return engines_json(d).get("builds", {}).get(str(build_id))


def up(d: Daemon, name: str) -> bool | None:
    return next((e["up"] for e in engines_json(d).get("engines", []) if e["name"] == name), None)


def managed(host) -> list[dict]:
    """scratchd's containers on ``host``, inspected; one removed meanwhile is left out.

    The daemon removes a finished pipeline's container off the slot, so a
    container listed here may be gone by the time it is inspected.
    """
    client = host.client()
    try:
        found = client.api.containers(all=True, filters={"label": "org.scratchd.managed"})
        inspected = []
        for c in found:
            try:
                inspected.append(client.api.inspect_container(c["Id"]))
            except docker.errors.NotFound:
                continue
        return inspected
    finally:
        client.close()


def test_builds_spread_within_capacity_labels_route_and_unplaceable_waits(
    engines, busybox_box, tmp_path, make_daemon
):
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"TOKEN={SECRET}\n")
    secrets.chmod(0o600)
    names = ["a", "b", "c", "big", "arm"]
    repos = {n: project(tmp_path / n, busybox_box) for n in names}
    labels = {"big": ["big"], "arm": ["arm64"]}
    tables = [
        repo_table(n, r.path, labels=labels.get(n, []), secrets_file=str(secrets))
        for n, r in repos.items()
    ]
    e1, e2, e3 = engines
    pool = [engine_table(e1, labels=["amd64"]), engine_table(e2, labels=["amd64", "big"])]
    pool.append(engine_table(e3, labels=["amd64"]))
    d = make_daemon(tables, executor="docker", engines=pool)

    checked = cli(d, "check-config")
    assert "repo[5].labels: error: repository arm can never be placed" in checked.stderr
    assert "not reachable" not in checked.stderr
    d.start()
    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for host in engines:
            seen += managed(host)
        if all(any(b.status == "passed" for b in d.builds(repo=n)) for n in ("a", "b", "c", "big")):
            break
        time.sleep(0.3)
    builds = {b.repo: b for b in d.builds()}
    assert [builds[n].status for n in names] == ["passed"] * 4 + ["queued"], d.log()[-3000:]

    placed = {n: engine_of(d, builds[n].id) for n in names[:4]}
    assert placed["big"] == "e2"
    assert len(set(placed.values())) >= 2, placed
    spans: dict[str, list[tuple[float, float]]] = {}
    for n in names[:4]:
        text = cli(d, "logs", str(builds[n].id)).stdout
        start = float(text.split("start ")[1].split()[0])
        end = float(text.split("end ")[1].split()[0])
        spans.setdefault(placed[n], []).append((start, end))
        assert f"token is {SECRET}" not in text and "token is ***" in text
    for engine, runs in spans.items():
        runs.sort()
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(runs)), (engine, runs)

    assert seen, "the pipelines ran on the engines"
    for info in seen:
        assert SECRET not in json.dumps(info["Config"]["Labels"])
        assert SECRET not in json.dumps(info["Config"]["Env"])
        assert info["Config"]["Labels"]["org.scratchd.build-id"]
    for host in engines:
        assert SECRET not in (host.root / "dockerd.log").read_text(errors="replace")

    status = cli(d, "status").stdout
    for host in engines:
        assert f"  {host.name}  up  0/1 slots, docker " in status, status
    assert "repository arm waits forever: requires labels arm64" in status
    table = cli(d, "builds").stdout.splitlines()
    assert table[0].startswith("ENGINE ")
    assert any(line.startswith("e2 ") and " big " in line for line in table[1:])
    assert "placed on engine e2" in d.log()


def test_an_engine_lost_mid_build_retries_elsewhere_and_comes_back(
    engines, busybox_box, tmp_path, make_daemon
):
    repo = project(tmp_path / "r", busybox_box, sleep=8)
    pool = [engine_table(h) for h in engines]
    d = make_daemon(
        [repo_table("r", repo.path)], executor="docker", engines=pool, engine_check_interval="1s"
    ).start()
    d.wait(lambda: d.builds() and engine_of(d, d.builds()[0].id), 60, "the build placed")
    build = d.builds()[0]
    first = engine_of(d, build.id)
    host = next(h for h in engines if h.name == first)
    d.wait(lambda: managed(host), 30, "the pipeline container on its engine")
    host.kill()
    try:
        d.wait(lambda: up(d, first) is False, 30, f"engine {first} marked down")
        done = d.wait_status(repo.head(), "passed", timeout=120)
        assert done.id == build.id and done.attempt == 2
        second = engine_of(d, build.id)
        assert second not in (None, first)
        assert "  DOWN  " in cli(d, "status").stdout
        assert "step" not in (d.store().get(build.id).failed_step or "")
    finally:
        host.start()
    d.wait(lambda: up(d, first) is True, 60, f"engine {first} back in service")
    assert f"  {first}  up  " in cli(d, "status").stdout


def test_controller_kill9_leaves_an_orphan_the_next_start_removes_and_cancel_kills(
    engines, busybox_box, tmp_path, make_daemon
):
    repo = project(tmp_path / "r", busybox_box, sleep=300)
    pool = [engine_table(h) for h in engines]
    d = make_daemon([repo_table("r", repo.path)], executor="docker", engines=pool).start()
    d.wait(lambda: d.builds() and engine_of(d, d.builds()[0].id), 60, "the build placed")
    build = d.builds()[0]
    host = next(h for h in engines if h.name == engine_of(d, build.id))
    d.wait(lambda: managed(host), 30, "the pipeline container")
    (orphan,) = [c["Id"] for c in managed(host)]
    d.kill9()
    assert [c["Id"] for c in managed(host)] == [orphan], "a crash leaves it behind"

    d.start()
    everywhere = lambda: [c["Id"] for h in engines for c in managed(h)]  # noqa: E731
    d.wait(lambda: orphan not in everywhere(), 60, "the orphan removed")
    d.wait(lambda: everywhere(), 60, "the recovered build running again")
    assert cli(d, "cancel", str(build.id)).returncode == 0
    d.wait_status(repo.head(), "cancelled", timeout=60)
    d.wait(lambda: not everywhere(), 30, "the cancelled build's container gone")


def shown(d: Daemon, name: str) -> dict | None:
    return next((e for e in engines_json(d).get("engines", []) if e["name"] == name), None)


def test_a_reload_changes_the_pool_without_a_restart(engines, busybox_box, tmp_path, make_daemon):
    """SIGHUP: e1 removed mid-build (it finishes there); e2, e3 added, e3 once it answers."""
    e1, e2, e3 = engines
    first = project(tmp_path / "first", busybox_box, sleep=8)
    d = make_daemon(
        [repo_table("first", first.path)],
        executor="docker",
        engines=[engine_table(e1)],
        engine_check_interval="1s",
    ).start()
    d.wait(lambda: d.builds() and engine_of(d, d.builds()[0].id) == "e1", 60, "first on e1")
    d.wait(lambda: managed(e1), 30, "its container on e1")
    e3.stop()  # added while down: it must take no build until it answers
    try:
        later = {n: project(tmp_path / n, busybox_box, sleep=1) for n in ("second", "third")}
        d.engines = [engine_table(e2), engine_table(e3)]
        d.write_config(
            [repo_table("first", first.path)] + [repo_table(n, r.path) for n, r in later.items()]
        )
        d.signal(signal.SIGHUP)
        d.wait(lambda: (shown(d, "e1") or {}).get("removed"), 30, "e1 shown as removed")
        assert "  e1  removed  1/1 slots" in cli(d, "status").stdout
        done = d.wait_status(first.head(), "passed", timeout=120)
        assert (engine_of(d, done.id), done.attempt) == ("e1", 1), "it finished where it ran"
        for repo in later.values():
            build = d.wait_status(repo.head(), "passed", timeout=120)
            assert engine_of(d, build.id) == "e2", "not e1 (removed, idle) nor e3 (down)"
        assert shown(d, "e1") is None, "forgotten once its last build ended"
        assert up(d, "e3") is False
        d.wait(lambda: not managed(e1), 30, "e1's container removed after its slot went back")
    finally:
        e3.start()
    d.wait(lambda: up(d, "e3") is True, 60, "e3 in service once it answers")
    again = TIMED_YML.format(box=busybox_box, sleep=4)
    for repo in later.values():
        repo.commit("again", files={"wercker.yml": again})

    def newest(name: str):
        return max(d.builds(repo=name), key=lambda b: b.id)

    d.wait(lambda: all(newest(n).id > 3 and newest(n).status == "passed" for n in later), 120)
    assert {engine_of(d, newest(n).id) for n in later} == {"e2", "e3"}
    assert "reload: engine e3 added" in d.log() and "engine e3 answers" in d.log()


DEPLOY_WITH_A_LOCAL_STEP = """\
box: {box}
build:
  steps:
    - script:
        name: build
        code: echo built > "$WERCKER_OUTPUT_DIR/artifact"
deploy:
  steps:
    - announce:
        word: shipped
"""


def test_a_vendored_step_in_deploy_runs_on_a_remote_engine(
    engines, busybox_box, tmp_path, make_daemon
):
    """deploy works on the build's output, so its local step is copied to the engine."""
    repo = WorkRepo(tmp_path / "app")
    step = 'echo "$WERCKER_ANNOUNCE_WORD $(cat "$WERCKER_ROOT/artifact") at $WERCKER_STEP_ROOT"\n'
    repo.commit(
        "deploy with a vendored step",
        files={
            "wercker.yml": DEPLOY_WITH_A_LOCAL_STEP.format(box=busybox_box),
            ".scratchd/steps/announce/run.sh": step,
        },
    )
    tables = [repo_table("app", repo.path, pipelines=["build", "deploy"])]
    d = make_daemon(tables, executor="docker", engines=[engine_table(engines[0])]).start()
    build = d.wait_status(repo.head(), "passed", timeout=120)
    assert engine_of(d, build.id) == "e1"
    text = cli(d, "logs", str(build.id)).stdout
    assert "shipped built at /pipeline/steps/local-" in text, text


def build_log(d: Daemon, repo: str, build_id: int) -> str:
    from scratchd.store.logs import read_log

    return read_log(d.state.log_path(repo, build_id)) or ""


def uptime_of(log: str, word: str) -> float:
    (value,) = re.findall(rf"\b{word} (\d+\.\d+)", log)
    return float(value)


def containers_of(host) -> dict[str, str]:
    """Build number -> the state of its pipeline container on ``host``."""
    return {
        c["Config"]["Labels"]["org.scratchd.build-id"]: c["State"]["Status"] for c in managed(host)
    }


def one_running_one_prepared(make_daemon, host, busybox_box, tmp_path, sleep: float):
    """A daemon with ``host`` alone (capacity 1): build "first" runs ``sleep`` seconds,
    build "second" (sleep 1) waits with its container made. Returns (daemon, running,
    waiting, first's repo, second's repo)."""
    first = project(tmp_path / "first", busybox_box, sleep=sleep)
    d = make_daemon(
        [repo_table("first", first.path)], executor="docker", engines=[engine_table(host)]
    ).start()
    d.wait(lambda: d.builds() and engine_of(d, d.builds()[0].id) == host.name, 60, "first placed")
    running = d.builds()[0]
    second = project(tmp_path / "second", busybox_box, sleep=1)
    d.write_config([repo_table(n, r.path) for n, r in (("first", first), ("second", second))])
    d.signal(signal.SIGHUP)
    d.wait(lambda: len(containers_of(host)) == 2, 60, "the waiting build's container made")
    (waiting,) = [b for b in d.builds() if b.id != running.id]
    return d, running, waiting, first, second


def test_a_waiting_builds_container_is_ready_before_the_slot_frees_its_steps_wait(
    engines, busybox_box, tmp_path, make_daemon
):
    """Capacity 1: the next build's container runs beside the first, its step only after."""
    e1 = engines[0]
    d, running, waiting, _, second = one_running_one_prepared(
        make_daemon, e1, busybox_box, tmp_path, sleep=6
    )
    assert containers_of(e1) == {str(running.id): "running", str(waiting.id): "running"}
    assert d.store().get(running.id).status == "running", "made while the first still runs"
    assert engine_of(d, waiting.id) is None, "made, but holding no slot"
    d.wait_status(second.head(), "passed", timeout=120)
    logs = {b.id: build_log(d, b.repo, b.id) for b in (running, waiting)}
    assert "waiting for a free slot" in logs[waiting.id]
    # One kernel: /proc/uptime compares the two containers' clocks.
    assert uptime_of(logs[waiting.id], "start") >= uptime_of(logs[running.id], "end")
    d.wait(lambda: not managed(e1), 30, "both containers removed")


def test_a_cancelled_waiting_build_leaves_no_container(engines, busybox_box, tmp_path, make_daemon):
    e2 = engines[1]
    d, running, waiting, first, second = one_running_one_prepared(
        make_daemon, e2, busybox_box, tmp_path, sleep=300
    )
    assert cli(d, "cancel", str(waiting.id)).returncode == 0
    d.wait_status(second.head(), "cancelled", timeout=60)
    assert containers_of(e2) == {str(running.id): "running"}, "removed before it was recorded"
    assert cli(d, "cancel", str(running.id)).returncode == 0
    d.wait_status(first.head(), "cancelled", timeout=60)
    d.wait(lambda: not managed(e2), 30, "the cancelled build's container gone")
