"""Benchmark: ``scratchd bake`` against ``docker build``+``docker save`` and the tar|gzip floor.

Two cases, each measured ``--reps`` times (default 5) with fresh file contents
before every single measurement, so neither docker's build cache nor a
content-addressed shortcut can help:

* seed: one static Go binary (a tiny HTTP server built offline with
  ``CGO_ENABLED=0 go build``); fresh bytes come from a 32-byte nonce
  compiled in with ``-X main.nonce=...`` and rewritten in each copy.
* large: ~200 MB mixed tree: 2000 small files plus 4 large ones, half
  random (incompressible) and half log-like text (compressible).

Methods: (1) ``scratchd bake --docker-archive`` as a command; (2) the same
bake as a library call in a warm process (how the daemon bakes), at the
default gzip level and at level 6; (a) ``docker build`` of ``FROM scratch``
+ ``COPY`` then ``docker save``; (b) the floor ``tar -c | gzip -N | sha256sum``.
Prints medians of wall time and peak RSS (of the process tree we start; for
docker that is the client only — the daemon's work is not counted) and the
ratios the issue sets targets for. Usage::

    python bench/bake.py [--reps 5] [--cases seed,large]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from seed import seed_maker  # bench/seed.py: this script's directory is on sys.path

LARGE_SMALL_FILES = 2000
LARGE_BIG_FILES = 4
LARGE_BIG_SIZE = 45 << 20
_WORDS = [
    "GET",
    "POST",
    "INFO",
    "WARN",
    "ERROR",
    "debug",
    "user",
    "id",
    "status",
    "ok",
    "failed",
    "request",
    "time",
    "ms",
    "the",
    "a",
    "to",
    "of",
]


@dataclass
class Sample:
    seconds: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)
    out_bytes: list[int] = field(default_factory=list)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5, choices=range(1, 11), metavar="1-10")
    parser.add_argument("--cases", default="seed,large")
    parser.add_argument(
        "--worker", nargs=3, metavar=("DIR", "OUT", "LEVEL"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        return _worker(*args.worker)
    os.environ.setdefault("DOCKER_HOST", "unix:///run/scratchd-test/docker.sock")
    with tempfile.TemporaryDirectory(prefix="scratchd-bench-") as tmp:
        work = Path(tmp)
        # An installed scratchd has its bytecode cached; measure that, not a compile
        # on every start (PYTHONDONTWRITEBYTECODE), and keep the cache out of the tree.
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        subprocess.run(
            [sys.executable, "-m", "scratchd", "--version"], check=True, capture_output=True
        )
        bare, heavy = _baselines()
        print(f"interpreter start: bare {bare:.3f}s, `import requests, docker` {heavy:.3f}s")
        for case in args.cases.split(","):
            make = seed_maker(work) if case == "seed" else _large_tree
            _report(case, _measure(make, work, args.reps), bare)
    return 0


# -- the things measured ------------------------------------------------------


def _methods(level_default: int) -> dict:
    return {
        "(1) scratchd bake (command)": lambda d, o: _cli(d, o),
        "(2) bake() in-process": lambda d, o: _library(d, o, level_default),
        "(2') bake() in-process, gzip -6": lambda d, o: _library(d, o, 6),
        "(a) docker build + save": _docker,
        f"(b) tar | gzip -{level_default} | sha256sum": lambda d, o: _floor(d, level_default),
        "(b') tar | gzip -6 | sha256sum": lambda d, o: _floor(d, 6),
    }


def _cli(tree: Path, out: Path) -> tuple[float, int, int]:
    argv = [sys.executable, "-m", "scratchd", "bake", str(tree), "--docker-archive", str(out)]
    seconds, rss = _timed(argv)
    return seconds, rss, out.stat().st_size


def _library(tree: Path, out: Path, level: int) -> tuple[float, int, int]:
    argv = [sys.executable, __file__, "--worker", str(tree), str(out), str(level)]
    _, rss, stdout = _timed(argv, capture=True)
    return json.loads(stdout)["seconds"], rss, out.stat().st_size


def _worker(tree: str, out: str, level: str) -> int:
    """A warm process (imports done, like the daemon) timing just the bake + archive."""
    from scratchd.image.build import bake
    from scratchd.image.docker_archive import write_docker_archive
    from scratchd.models import ImageSpec

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=Path(out).parent) as blobs:
        image = bake(Path(tree), ImageSpec(cmd=("/app",)), Path(blobs), gzip_level=int(level))
        write_docker_archive(image, Path(out), ["scratchd-bench:lib"])
    print(json.dumps({"seconds": time.perf_counter() - start}))
    return 0


def _docker(tree: Path, out: Path) -> tuple[float, int, int]:
    tag = f"scratchd-bench/{uuid.uuid4().hex[:12]}:latest"
    dockerfile = out.parent / "Dockerfile"
    dockerfile.write_text('FROM scratch\nCOPY . /\nCMD ["/app"]\n')
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    try:
        t1, rss1 = _timed(
            ["docker", "build", "-q", "-f", str(dockerfile), "-t", tag, str(tree)], env
        )
        t2, rss2 = _timed(["docker", "save", "-o", str(out), tag], env)
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    return t1 + t2, max(rss1, rss2), out.stat().st_size


def _floor(tree: Path, level: int) -> tuple[float, int, int]:
    script = f"tar -c -C '{tree}' . | gzip -{level} | sha256sum >/dev/null"
    seconds, rss = _timed(["sh", "-c", script])
    return seconds, rss, 0


def _timed(argv, env=None, capture=False):
    """Run to completion; wall seconds and peak RSS (kB) of the process tree started.

    The command runs under ``busybox time``: a process forked from Python
    would report Python's own peak RSS too (Linux keeps the high-water mark
    across exec), while a child forked by the small busybox reports its own.
    """
    with tempfile.TemporaryFile() as out:
        start = time.perf_counter()
        proc = subprocess.run(
            [_BUSYBOX, "time", "-f", "%M", *argv], env=env, stdout=out, stderr=subprocess.PIPE
        )
        seconds = time.perf_counter() - start
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0:
            raise SystemExit(f"{argv[:3]} failed ({proc.returncode}): {' | '.join(err[-5:])}")
        out.seek(0)
        stdout = out.read().decode()
    rss_kb = int(err[-1]) // _rss_scale()
    return (seconds, rss_kb, stdout) if capture else (seconds, rss_kb)


_BUSYBOX = shutil.which("busybox") or "busybox"
_SCALE: list[int] = []


def _rss_scale() -> int:
    """Some busybox versions print ru_maxrss x (page size / 1 KiB): calibrate once."""
    if not _SCALE:
        code = (
            "import resource; x = bytearray(96 << 20); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        proc = subprocess.run(
            [_BUSYBOX, "time", "-f", "%M", sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        _SCALE.append(max(1, round(int(proc.stderr.split()[-1]) / int(proc.stdout))))
    return _SCALE[0]


def _measure(make, work: Path, reps: int) -> dict[str, Sample]:
    from scratchd.image.build import DEFAULT_GZIP_LEVEL

    methods = _methods(DEFAULT_GZIP_LEVEL)
    results = {name: Sample() for name in methods}
    for rep in range(reps):
        for name, method in methods.items():  # fresh contents before every measurement
            run_dir = work / f"run-{rep}"
            shutil.rmtree(run_dir, ignore_errors=True)
            tree = make(run_dir / "tree")
            seconds, rss, size = method(tree, run_dir / "out.tar")
            results[name].seconds.append(seconds)
            results[name].rss_kb.append(rss)
            results[name].out_bytes.append(size)
            shutil.rmtree(run_dir)
    return results


# -- inputs -------------------------------------------------------------------


def _large_tree(tree: Path) -> Path:
    """~200 MB: many small files in nested dirs plus a few large ones, half compressible."""
    corpus = _fresh_corpus()
    for i in range(LARGE_SMALL_FILES):
        path = tree / f"d{i % 20:02d}" / f"s{i % 7}" / f"f{i:05d}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        size = 1024 + (i * 7919) % 15360
        path.write_bytes(_textish(corpus, size) if i % 2 else os.urandom(size))
    for i in range(LARGE_BIG_FILES):
        with open(tree / f"big{i}.bin", "wb") as f:
            for _ in range(0, LARGE_BIG_SIZE // 2, 1 << 20):
                f.write(os.urandom(1 << 20))
                f.write(_textish(corpus, 1 << 20))
    return tree


def _fresh_corpus() -> bytes:
    """64 KiB of log-like text from a random vocabulary, new on every call."""
    rng = random.Random(secrets.randbits(64))
    words = [secrets.token_hex(rng.randint(1, 6)) for _ in range(300)] + _WORDS
    lines = (" ".join(rng.choices(words, k=rng.randint(4, 14))) for _ in range(3000))
    return "\n".join(lines).encode()[: 64 << 10]


def _textish(corpus: bytes, size: int) -> bytes:
    """Random slices of the corpus: repeats at varying distances, like real text files."""
    out = bytearray()
    while len(out) < size:
        start = secrets.randbelow(len(corpus) - 512)
        out += corpus[start : start + 64 + secrets.randbelow(448)]
    return bytes(out[:size])


# -- output -------------------------------------------------------------------


def _baselines() -> tuple[float, float]:
    def median_start(code: str) -> float:
        return statistics.median(_timed([sys.executable, "-c", code])[0] for _ in range(5))

    return median_start("pass"), median_start("import requests, docker")


def _report(case: str, results: dict[str, Sample], bare_start: float) -> None:
    med = {name: statistics.median(s.seconds) for name, s in results.items()}
    docker = med["(a) docker build + save"]
    floor = next(v for k, v in med.items() if k.startswith("(b)"))
    reps = len(next(iter(results.values())).seconds)
    print(f"\n== {case} (median of {reps})")
    print(
        f"{'method':<34} {'wall s':>8} {'peak RSS MB':>12} {'output MB':>10} "
        f"{'docker/x':>9} {'x/floor':>8}"
    )
    for name, sample in results.items():
        rss = statistics.median(sample.rss_kb) / 1024
        size = statistics.median(sample.out_bytes) / 1e6
        print(
            f"{name:<34} {med[name]:>8.3f} {rss:>12.1f} {size:>10.2f} "
            f"{docker / med[name]:>9.2f} {med[name] / floor:>8.2f}"
        )
    # The interpreter's own start-up varies most between machines (site hooks, load).
    own = med["(1) scratchd bake (command)"] - bare_start
    print(
        f"(1) minus a bare interpreter start ({bare_start:.3f}s): {own:.3f}s, docker/x "
        f"{docker / own:.2f}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
