"""Benchmark: a pool of remote engines (each in a network namespace, TLS), needs root.

1. Throughput: ``--builds`` builds (one per repository) of a step that sleeps
   ``--sleep`` seconds, through a real ``scratchd run`` with capacity 1 per
   engine, on 1 engine and then on 3. Prints both wall times (first build
   started to last build finished, from the state database) and their ratio
   (target: at least 2.7x).
2. Per-build overhead of a remote engine over the local one for the seed Go
   server: a pipeline whose source holds the Go source and the built binary,
   and whose one step copies the binary to the output dir. Local = bind
   mounts; remote = source tar up + output tar back, through the pipeline
   container's main process (see ``scratchd.runner.remote_engine``). Prints
   the medians, their difference (which includes how loaded each engine is)
   and the transfers alone (target < 150 ms).

Usage::

    sudo python bench/engines.py [--builds 30] [--sleep 2] [--reps 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import docker  # noqa: E402
from tests.git.repos import WorkRepo  # noqa: E402
from tests.support import services  # noqa: E402
from tests.support.daemon import render_config  # noqa: E402
from tests.support.engines import engine_hosts  # noqa: E402

from scratchd.pipeline.plan import Box  # noqa: E402
from scratchd.runner.backend import PipelineDirs, PipelineJob, StepCommand  # noqa: E402
from scratchd.runner.docker_backend import DockerBackend  # noqa: E402
from scratchd.runner.remote_engine import RemoteEngineBackend  # noqa: E402
from scratchd.store import StateDir, Store  # noqa: E402
from seed import seed_maker  # noqa: E402

SLEEP_YML = """\
box: {box}
build:
  steps:
    - script:
        name: sleep
        code: sleep {sleep}
"""


def throughput(base: Path, hosts, box: str, builds: int, sleep: float) -> float:
    """Wall seconds for ``builds`` builds on ``hosts`` through a real daemon."""
    base.mkdir(parents=True)
    repos = []
    for i in range(builds):
        repo = WorkRepo(base / f"r{i}")
        repo.commit("yml", files={"wercker.yml": SLEEP_YML.format(box=box, sleep=sleep)})
        repos.append(repo)
    state = StateDir(base / "state")
    engines = [
        {
            "name": h.name,
            "url": h.url,
            "tls": {
                "ca": str(h.certs.ca),
                "cert": str(h.certs.client_cert),
                "key": str(h.certs.client_key),
            },
            "capacity": 1,
        }
        for h in hosts
    ]
    tables = [
        {"name": r.path.name, "path": str(r.path), "branches": ["main"], "pipelines": ["build"]}
        for r in repos
    ]
    daemon = {"state_dir": str(state.root), "executor": "docker", "poll_interval": "30s"}
    config = base / "scratchd.toml"
    config.write_text(render_config(daemon, tables, None, engines))
    log = open(base / "daemon.log", "wb")  # noqa: SIM115 - the child keeps it
    proc = subprocess.Popen(
        [sys.executable, "-m", "scratchd", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + builds * (sleep + 10) + 60
        while time.monotonic() < deadline:
            time.sleep(0.5)
            if not state.db.exists():
                continue
            store = Store(state.db, create=False)
            try:
                done = [b for b in store.list_builds(limit=1000) if b.status == "passed"]
                if len(done) == builds:
                    return max(b.finished_at for b in done) - min(b.started_at for b in done)
            finally:
                store.close()
        raise SystemExit(f"builds did not finish; see {base / 'daemon.log'}")
    finally:
        proc.terminate()
        proc.wait(60)


def pipeline_job(base: Path, box: str, app: Path) -> PipelineJob:
    root = base / "source"
    dirs = PipelineDirs(root, root, base / "output", base / "cache", base / "report", base)
    for d in (root, dirs.output, dirs.cache, dirs.report):
        d.mkdir(parents=True, exist_ok=True)
    (root / "main.go").write_text("package main\n")
    os.link(app, root / "app")
    fields = {"REPO": "seed", "BUILD_ID": "1"}
    return PipelineJob(name="build", run_id="bench", dirs=dirs, box=Box(id=box), log_fields=fields)


class _TimedStart(DockerBackend):
    """Times the engine's own container start, which the local backend pays too."""

    def _start(self, cid, job) -> None:
        started = time.perf_counter()
        super()._start(cid, job)
        self._engine_start = time.perf_counter() - started


class TimedRemote(RemoteEngineBackend, _TimedStart):
    """Records how long the transfers themselves took: what a remote engine adds.

    The upload is everything the remote start does beyond the engine's own
    container start: waiting for the tar (made while the container is
    created), attaching, the handshake, the bytes, the unpacking; the
    download is all of :meth:`collect`.
    """

    transfers: list[float] = []
    phases: dict[str, list[float]] = {"engine start": [], "upload": [], "download": []}

    def _start(self, cid, job) -> None:
        started = time.perf_counter()
        super()._start(cid, job)
        self._upload = time.perf_counter() - started - self._engine_start

    def collect(self) -> None:
        started = time.perf_counter()
        super().collect()
        download = time.perf_counter() - started
        self.transfers.append(self._upload + download)
        took = (self._engine_start, self._upload, download)
        for name, value in zip(self.phases, took, strict=True):
            self.phases[name].append(value)


def one_build(backend, job: PipelineJob) -> float:
    started = time.perf_counter()
    backend.setup(job)
    command = StepCommand(name="copy", script='cp app "$WERCKER_OUTPUT_DIR/"')
    assert backend.run(command, lambda *_: None, threading.Event()) == 0
    if hasattr(backend, "collect"):
        backend.collect()
    backend.teardown()
    if hasattr(backend, "endpoint"):  # removed off the slot, but the local one pays it too
        backend.endpoint.settle()
    assert (job.dirs.output / "app").exists()
    return time.perf_counter() - started


def overhead(base: Path, host, box: str, reps: int) -> tuple[float, float]:
    app = seed_maker(base)(base / "seed") / "app"
    host_url = services.docker_host()  # the engine the bench read its images from
    local, remote = [], []
    for i in range(reps):
        here = DockerBackend(base_url=host_url)
        local.append(one_build(here, pipeline_job(base / f"l{i}", box, app)))
        backend = TimedRemote(host.endpoint())
        remote.append(one_build(backend, pipeline_job(base / f"r{i}", box, app)))
    return statistics.median(local), statistics.median(remote)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--builds", type=int, default=30)
    parser.add_argument("--sleep", type=float, default=2.0)
    parser.add_argument("--reps", type=int, default=10)
    args = parser.parse_args()
    local = docker.DockerClient(base_url=services.docker_host(), timeout=120)
    with tempfile.TemporaryDirectory(prefix="scratchd-bench-engines-") as tmp:
        base = Path(tmp)
        (base / "bb").mkdir()
        box = services.busybox_image(local, base / "bb")
        with engine_hosts(3, base / "engines", [box], local) as hosts:
            one = throughput(base / "one", hosts[:1], box, args.builds, args.sleep)
            three = throughput(base / "three", hosts, box, args.builds, args.sleep)
            print(f"{args.builds} builds of sleep {args.sleep:g}s, capacity 1 per engine")
            print(f"  1 engine   {one:7.1f} s")
            print(f"  3 engines  {three:7.1f} s")
            print(f"  ratio      {one / three:7.2f}x   (target >= 2.7x)")
            lo, re = overhead(base, hosts[0], box, args.reps)
            print(f"seed Go build, median of {args.reps}: setup + step + output + teardown")
            print(f"  local engine   {lo * 1000:7.0f} ms")
            print(f"  remote engine  {re * 1000:7.0f} ms")
            print(f"  difference     {(re - lo) * 1000:7.0f} ms   (engines' load included)")
            moved = statistics.median(TimedRemote.transfers)
            print(f"  source upload + output download {moved * 1000:5.0f} ms   (target < 150 ms)")
            split = ", ".join(
                f"{name} {statistics.median(took) * 1000:.0f} ms"
                for name, took in TimedRemote.phases.items()
            )
            print(f"    medians: {split}")


if __name__ == "__main__":
    main()
