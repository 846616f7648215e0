"""Web benchmark: page times on a big state database, a 20 MB log in Chromium, SSE load.

Run: ``python bench/web.py [--quick]``. Prints one table:

- pages: with 100,000 builds (20 repositories, 5 branches, every status)
  written through the store in batches, a real ``scratchd web`` process
  serves ``/``, ``/builds`` and ``/repos/<name>``; the time of each request
  seen from a keep-alive client on loopback (server time plus a loopback
  round trip: an upper bound of the server's time), p50 and p95 of 200
  requests each. Target: p95 < 50 ms.
- log: a running build with a 20 MB log; headless Chromium opens its page;
  time from navigation start until the log's last line is in the DOM.
  Target: < 1 s.
- sse: a real daemon (host executor) takes a burst of commits, once with no
  web clients and once with 50 SSE clients attached to a web process (25 on
  the change feed, 25 following build logs); commit → running latency p99
  of both. Target: within 10% of the figure without clients.

``--quick`` shrinks every phase (10,000 builds, 50 requests, 2 MB, 20
commits) to check the script itself; its figures are not the benchmark's.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.util
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.web.support import WebProcess, write_config  # noqa: E402

from scratchd.models import Commit, Trigger  # noqa: E402
from scratchd.store import BuildLog, StateDir, Store  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
STATUSES = ("passed", "passed", "passed", "failed", "error", "cancelled")


def load_bench_daemon():
    spec = importlib.util.spec_from_file_location("bench_daemon", ROOT / "bench" / "daemon.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def seed_builds(state: StateDir, count: int, repos: int = 20, batch: int = 2000) -> None:
    """``count`` finished builds, queued through the store and finished in batches."""
    store = Store(state.db)
    now = time.time() - count
    made = 0
    while made < count:
        n = min(batch, count - made)
        commits = [
            Commit(f"r{i % repos}", f"refs/heads/b{i % 5}", f"{i:040x}")
            for i in range(made, made + n)
        ]
        builds = store.enqueue(commits, Trigger.PUSH, update_ref=False, now=now + made)
        with store.db.write() as conn:
            conn.executemany(
                "UPDATE builds SET status=?, started_at=?, finished_at=? WHERE id=?",
                [
                    (STATUSES[b.id % len(STATUSES)], b.created_at + 1, b.created_at + 30, b.id)
                    for b in builds
                ],
            )
        made += n
    store.close()


def time_pages(url: str, paths: list[str], requests: int) -> dict[str, list[float]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    out: dict[str, list[float]] = {}
    for path in paths:
        times = []
        for _ in range(requests):
            t0 = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            times.append(time.perf_counter() - t0)
            assert response.status == 200, (path, response.status)
        out[path] = times
    conn.close()
    return out


def big_log_build(state: StateDir, megabytes: int) -> tuple[int, int]:
    """A running build whose plain log is ``megabytes`` MB; returns (id, lines)."""
    store = Store(state.db)
    build = store.enqueue([Commit("r0", "refs/heads/big", "f" * 40)], Trigger.MANUAL)[0]
    store.claim_next(max_running=1, repos=["r0"], one_per_ref=False)
    store.close()
    lines = 0
    with BuildLog(state.log_path("r0", build.id)) as log:
        text = "\x1b[32mok\x1b[0m " + "x" * 60
        while log.path.stat().st_size < megabytes * 1_000_000:
            for _ in range(1000):
                lines += 1
                log.line(f"{lines} {text}", pipeline="build", step="big")
    return build.id, lines


def chromium_tail_time(url: str, build_id: int, lines: int) -> float:
    from tests.web.browser import chrome

    driver = chrome()
    try:
        driver.get(url + "/healthz")  # start the browser before timing
        driver.get(f"{url}/builds/{build_id}")
        deadline = time.monotonic() + 30
        script = f"return document.getElementById('L{lines}') ? performance.now() : null"
        while time.monotonic() < deadline:
            shown = driver.execute_script(script)
            if shown is not None:
                return shown / 1000  # ms since navigation start
            time.sleep(0.01)
        raise SystemExit("the log's last line never showed")
    finally:
        driver.quit()


class SseClients:
    """``count`` threads reading SSE streams until stopped; counts events seen."""

    def __init__(self, url: str, paths: list[str]) -> None:
        self.url, self.stop, self.events = url, threading.Event(), 0
        self.threads = [threading.Thread(target=self._read, args=(p,), daemon=True) for p in paths]
        for t in self.threads:
            t.start()

    def _read(self, path: str) -> None:
        """Like a page's EventSource: reconnect after ``retry`` (1 s), stop after ``end``."""
        host, port = self.url.removeprefix("http://").split(":")
        last = None
        while not self.stop.is_set():
            try:
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("GET", path, headers={"Last-Event-ID": last} if last else {})
                response = conn.getresponse()
                while not self.stop.is_set() and response.status == 200:
                    line = response.readline()
                    if not line or line.startswith(b"event: end"):
                        return
                    if line.startswith(b"id:"):
                        last = line[3:].strip().decode()
                        self.events += 1
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(1.0)

    def close(self) -> None:
        self.stop.set()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def sse_latency(root: Path, commits: int, clients: int) -> tuple[list[float], float]:
    """Latencies, and the CPU seconds the web process used during the burst."""
    bd = load_bench_daemon()
    bench = bd.Bench(root, 10, poll_interval="60s", poll_only=False)
    bench.seed_refs()
    bench.start()
    web, readers = None, None
    try:
        if clients:
            web = WebProcess(bench.config).start()
            # Half watch the change feed, half follow the logs of the burst's builds
            # (each waits, as a browser would, until its build exists).
            first = max((b.id for b in bench.store.list_builds(limit=1)), default=0) + 1
            paths = ["/events"] * (clients // 2) + [
                f"/builds/{first + i}/log/events" for i in range(clients - clients // 2)
            ]
            readers = SseClients(web.url, paths)
            time.sleep(1)
        before = cpu_seconds(web.proc.pid) if web else 0.0
        latencies = [bench.latency(bench.repos[i % 10], 60) for i in range(commits)]
        return latencies, (cpu_seconds(web.proc.pid) - before if web else 0.0)
    finally:
        if readers:
            readers.close()
        bench.settle()
        bench.stop()
        if web:
            web.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run to check the script")
    args = parser.parse_args()
    builds, requests, megabytes, commits = (
        (10_000, 50, 2, 20) if args.quick else (100_000, 200, 20, 100)
    )
    with tempfile.TemporaryDirectory(prefix="scratchd-bench-web-") as tmp:
        root = Path(tmp)
        state = StateDir(root / "state")
        t0 = time.perf_counter()
        seed_builds(state, builds)
        seeded = time.perf_counter() - t0
        build_id, lines = big_log_build(state, megabytes)
        web = WebProcess(write_config(root / "c.toml", state.root, [f"r{i}" for i in range(20)]))
        web.start()
        try:
            times = time_pages(web.url, ["/", "/builds", "/repos/r3"], requests)
            tail = chromium_tail_time(web.url, build_id, lines)
        finally:
            web.stop()
        quiet, _ = sse_latency(root / "quiet", commits, 0)
        loaded, web_cpu = sse_latency(root / "loaded", commits, 50)
    print(f"seeded {builds} builds in {seeded:.1f} s")
    print(f"{'page':<12} {'p50 ms':>8} {'p95 ms':>8}  target p95 < 50 ms")
    for path, values in times.items():
        print(f"{path:<12} {pct(values, 0.5) * 1000:8.1f} {pct(values, 0.95) * 1000:8.1f}")
    print(f"log: {megabytes} MB, {lines} lines: last line in the DOM after {tail:.2f} s (< 1 s)")
    q99, l99 = pct(quiet, 0.99), pct(loaded, 0.99)
    print(
        f"commit->running p99 over {commits} commits: {q99 * 1000:.0f} ms without clients, "
        f"{l99 * 1000:.0f} ms with 50 SSE clients ({(l99 / q99 - 1) * 100:+.0f}%; target <= +10%)"
    )
    print(f"the web process used {web_cpu:.2f} CPU-seconds serving them during the burst")
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
