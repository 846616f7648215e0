"""Daemon benchmark: how soon a commit starts building, and what watching costs when idle.

Run: ``python bench/daemon.py [--quick]``. Starts real ``scratchd run``
processes (host executor, a one-line echo build) on repositories made in a
temporary directory, and prints one table:

- latency: from ``git commit`` returning to the build entering ``running``
  in the state database, for 200 commits spread over 20 repositories (one
  at a time, so no build waits behind another). Targets: p50 < 100 ms,
  p99 < 500 ms. Baseline, measured here too: the same daemon in
  ``--poll-only`` mode at the default ``poll_interval`` (60 s), one commit
  per repository spread evenly over one poll cycle (20 samples; polling is
  what most CIs do).
- idle: 100 watched repositories, nothing happening, for 60 s: CPU seconds
  used by the daemon and its resident memory. Targets: < 0.5 CPU-seconds
  per minute, RSS < 80 MB. Baseline: the same daemon watching 0 repositories.

``--quick`` shrinks every phase (50 commits, a 15 s poll interval, 15 s of
idle) to check the script itself; its figures are not the benchmark's.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scratchd.store import StateDir, Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.git.repos import WorkRepo  # noqa: E402
from tests.support.daemon import QUICK_YML, render_config  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    """Repositories plus one daemon process over them."""

    def __init__(self, root: Path, repos: int, *, poll_interval: str, poll_only: bool) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.repos = [self._project(root / f"r{i}") for i in range(repos)]
        self.state = StateDir(root / "state")
        self.config = root / "scratchd.toml"
        tables = [
            {"name": r.path.name, "path": str(r.path), "branches": ["main"], "pipelines": ["build"]}
            for r in self.repos
        ]
        daemon = {
            "state_dir": str(self.state.root),
            "executor": "host",
            "poll_interval": poll_interval,
            "max_concurrent_builds": max(1, repos),
        }
        self.config.write_text(render_config(daemon, tables))
        self.args = ["--poll-only"] if poll_only else []
        self.proc: subprocess.Popen | None = None
        self.store: Store | None = None

    @staticmethod
    def _project(path: Path) -> WorkRepo:
        repo = WorkRepo(path)
        repo.commit(
            f"{path.name}: wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0"}
        )
        return repo

    def seed_refs(self) -> None:
        """Mark every tip as seen, so start-up queues nothing (an idle daemon)."""
        store = Store(self.state.db)
        for repo in self.repos:
            store.set_ref(repo.path.name, "refs/heads/main", repo.head())
        store.close()

    def start(self) -> None:
        log = open(self.root / "daemon.log", "wb")  # noqa: SIM115 - the child keeps it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scratchd", "run", "--config", str(self.config), *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.state.db.exists():
                self.store = self.store or Store(self.state.db, create=False)
                info = self.store.daemon_info()
                if info is not None and info.pid == self.proc.pid:
                    return
            time.sleep(0.05)
        raise SystemExit(f"daemon did not start; see {self.root / 'daemon.log'}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        if self.store is not None:
            self.store.close()

    def latency(self, repo: WorkRepo, timeout: float) -> float:
        """Commit, then poll the database until that commit's build has started."""
        sha = repo.commit()
        t0 = time.time()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for b in self.store.list_builds(repo=repo.path.name, limit=3):
                if b.sha == sha and b.started_at is not None:
                    return b.started_at - t0
            time.sleep(0.002)
        raise SystemExit(f"commit {sha[:8]} in {repo.path.name} never started building")

    def latency_spread(self, interval: float, timeout: float) -> list[float]:
        """One commit per repository, spread evenly over one poll cycle, then wait.

        A polling daemon's latency depends on where in its cycle a commit
        lands; spreading the commits samples the whole cycle in one interval.
        """
        t0: dict[str, float] = {}
        begin = time.monotonic()
        for i, repo in enumerate(self.repos):
            time.sleep(max(0.0, begin + i * interval / len(self.repos) - time.monotonic()))
            t0[repo.commit()] = time.time()
        started: dict[str, float] = {}
        deadline = time.monotonic() + timeout
        while len(started) < len(t0) and time.monotonic() < deadline:
            for b in self.store.list_builds(limit=3 * len(t0)):
                if b.sha in t0 and b.started_at is not None:
                    started[b.sha] = b.started_at - t0[b.sha]
            time.sleep(0.01)
        if len(started) < len(t0):
            raise SystemExit(f"only {len(started)} of {len(t0)} commits started building")
        return list(started.values())

    def settle(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.store.queued() and not self.store.running():
                return
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def measure_latency(root: Path, commits: int, repos: int, **kw) -> list[float]:
    """Sequential commits (inotify), or one batch over all repositories (poll-only)."""
    bench = Bench(root, repos, **kw)
    bench.seed_refs()
    bench.start()
    try:
        timeout = 30 + 2 * float(kw["poll_interval"].rstrip("s"))
        if kw["poll_only"]:
            return bench.latency_spread(float(kw["poll_interval"].rstrip("s")), timeout)
        return [bench.latency(bench.repos[i % repos], timeout) for i in range(commits)]
    finally:
        bench.settle()
        bench.stop()


def measure_idle(root: Path, repos: int, seconds: float) -> tuple[float, float]:
    bench = Bench(root, repos, poll_interval="60s", poll_only=False)
    bench.seed_refs()
    bench.start()
    try:
        time.sleep(3)  # start-up scans done
        before = bench.cpu_seconds()
        time.sleep(seconds)
        used = bench.cpu_seconds() - before
        return used * 60 / seconds, bench.rss_mb()
    finally:
        bench.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run to check the script")
    args = parser.parse_args()
    commits, poll, idle = (50, "15s", 15.0) if args.quick else (200, "60s", 60.0)
    with tempfile.TemporaryDirectory(prefix="scratchd-bench-") as tmp:
        root = Path(tmp)
        fast = measure_latency(root / "inotify", commits, 20, poll_interval=poll, poll_only=False)
        slow = measure_latency(root / "poll", 20, 20, poll_interval=poll, poll_only=True)
        cpu, rss = measure_idle(root / "idle100", 100, idle)
        cpu0, rss0 = measure_idle(root / "idle0", 0, idle)
    ms = 1000.0
    rows = [
        ("latency p50 (inotify)", f"{pct(fast, 0.5) * ms:.0f} ms", "< 100 ms", f"n={len(fast)}"),
        ("latency p99 (inotify)", f"{pct(fast, 0.99) * ms:.0f} ms", "< 500 ms", ""),
        ("latency mean (inotify)", f"{statistics.mean(fast) * ms:.0f} ms", "", ""),
        (f"latency p50 (poll-only {poll})", f"{pct(slow, 0.5) * ms:.0f} ms", "baseline", "n=20"),
        (f"latency p99 (poll-only {poll})", f"{pct(slow, 0.99) * ms:.0f} ms", "baseline", ""),
        ("p50 ratio poll-only / inotify", f"{pct(slow, 0.5) / pct(fast, 0.5):.0f}x", "", ""),
        ("idle CPU, 100 repos", f"{cpu:.3f} s/min", "< 0.5 s/min", f"over {idle:.0f} s"),
        ("idle CPU, 0 repos", f"{cpu0:.3f} s/min", "baseline", ""),
        ("RSS, 100 repos", f"{rss:.1f} MB", "< 80 MB", ""),
        ("RSS, 0 repos", f"{rss0:.1f} MB", "baseline", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>12}  {'target':<12}  note")
    for name, value, target, note in rows:
        print(f"{name:<{width}}  {value:>12}  {target:<12}  {note}")


if __name__ == "__main__":
    main()
