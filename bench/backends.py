"""Benchmark: what the backends add on top of running a process.

Per-step overhead (a step that runs ``true``), median of ``--reps`` runs:

* host: ``HostBackend.run`` vs the baseline ``subprocess.run(["/bin/sh", "-c", "true"])``.
* docker: ``DockerBackend.run`` vs the baseline of one bare exec through the
  same SDK (``exec_create`` + ``exec_start``) into the same container.

Output throughput: a step printing ``--lines`` lines (``seq``), read line by
line into a callback, vs the baseline of ``subprocess.run(capture_output)``
reading it all at once. Prints medians and ratios. The docker part needs a
box image (``--box``, default the test suite's busybox box) and DOCKER_HOST.
Usage::

    python bench/backends.py [--reps 20] [--lines 200000] [--box IMAGE]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from scratchd.pipeline.plan import Box
from scratchd.runner.backend import PipelineDirs, PipelineJob, StepCommand
from scratchd.runner.host import HostBackend


def job(base: Path, box: Box | None = None) -> PipelineJob:
    root = base / "source"
    dirs = PipelineDirs(root, root, base / "output", base / "cache", base / "report", base)
    for d in (root, dirs.output, dirs.cache, dirs.report):
        d.mkdir(parents=True, exist_ok=True)
    return PipelineJob(name="build", run_id="bench", dirs=dirs, box=box)


def median_seconds(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def step(backend, script: str) -> int:
    count = [0]

    def on_line(_stream: str, _text: str) -> None:
        count[0] += 1

    backend.run(StepCommand(name="bench", script=script), on_line, threading.Event())
    return count[0]


def row(name: str, value: float, baseline: float, unit: str = "ms") -> None:
    scale = 1000 if unit == "ms" else 1
    print(f"{name:<44} {value * scale:>10.2f} {unit}   x{value / baseline:>6.2f}")


def bench_host(base: Path, reps: int, lines: int) -> None:
    backend = HostBackend()
    backend.setup(job(base / "host"))
    try:
        floor = median_seconds(lambda: subprocess.run(["/bin/sh", "-c", "true"], check=True), reps)
        row("host baseline: subprocess.run sh -c true", floor, floor)
        row("host backend: step 'true'", median_seconds(lambda: step(backend, "true"), reps), floor)
        seq = f"seq {lines}"
        floor = median_seconds(lambda: subprocess.run(["sh", "-c", seq], capture_output=True), 3)
        row(f"host baseline: capture {lines} lines", floor, floor)
        row(
            f"host backend: stream {lines} lines",
            median_seconds(lambda: step(backend, seq), 3),
            floor,
        )
    finally:
        backend.teardown()


def bench_docker(base: Path, reps: int, lines: int, box: str) -> None:
    from scratchd.runner.docker_backend import DockerBackend

    backend = DockerBackend(labels={"org.scratchd.bench": "backends"})
    try:
        backend.setup(job(base / "docker", Box(id=box)))
        api, cid = backend.client.api, backend.container.id

        def bare_exec() -> None:
            api.exec_start(api.exec_create(cid, ["true"])["Id"])

        floor = median_seconds(bare_exec, reps)
        row("docker baseline: bare exec 'true'", floor, floor)
        row(
            "docker backend: step 'true'",
            median_seconds(lambda: step(backend, "true"), reps),
            floor,
        )
        seq = ["sh", "-c", f"seq {lines}"]
        floor = median_seconds(lambda: api.exec_start(api.exec_create(cid, seq)["Id"]), 3)
        row(f"docker baseline: exec output of {lines} lines", floor, floor)
        t = median_seconds(lambda: step(backend, f"seq {lines}"), 3)
        row(f"docker backend: stream {lines} lines", t, floor)
    finally:
        backend.teardown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--box", default="scratchd-test/busybox:latest")
    parser.add_argument("--no-docker", action="store_true")
    args = parser.parse_args()
    print(f"{'case':<44} {'median':>13}   vs baseline")
    with tempfile.TemporaryDirectory(prefix="scratchd-bench-") as tmp:
        bench_host(Path(tmp), args.reps, args.lines)
        if not args.no_docker:
            bench_docker(Path(tmp), args.reps, args.lines, args.box)


if __name__ == "__main__":
    main()
