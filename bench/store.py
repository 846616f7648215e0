"""State store benchmark: what the durable queue costs and how fast a trigger is seen.

Run: ``python bench/store.py [DIR]`` (DIR: where the databases go, default a
temporary directory; put it on the disk state_dir will use). Prints one
table; medians and p99 over the stated number of samples, each row with its
baseline measured here too:

- enqueue: one commit per transaction with ``synchronous=FULL`` (what the
  store uses, so a queued job survives power loss) against ``NORMAL``.
- claim: ``claim_next`` with a long finished history, against a plain
  one-row ``UPDATE`` transaction (the floor for any durable write).
- wake: a second process enqueues; how long until a reader polling
  ``PRAGMA data_version`` every 200 ms notices (target: well under 1 s, the
  promise of ``scratchd trigger``), against the poll interval itself.
- idle: CPU seconds per minute of that 200 ms poll when nothing happens.
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

from scratchd.models import Commit, Trigger
from scratchd.store import Store

SAMPLES = 200
POLL = 0.2  # the tick the daemon is advised to use


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def enqueue_latency(root: Path, synchronous: str) -> list[float]:
    store = Store(root / f"enqueue-{synchronous}.db")
    store.db.conn().execute(f"PRAGMA synchronous = {synchronous}")
    times = []
    for n in range(SAMPLES):
        start = time.perf_counter()
        store.enqueue([Commit("app", f"refs/heads/b{n % 10}", f"{n:040x}")], Trigger.PUSH)
        times.append(time.perf_counter() - start)
    store.close()
    return times


def claim_latency(root: Path) -> tuple[list[float], list[float]]:
    store = Store(root / "claim.db")
    for n in range(2000):  # history the claim query must skip
        store.enqueue([Commit("app", f"refs/heads/b{n % 50}", f"{n:040x}")], Trigger.PUSH)
        job = store.claim_next(max_running=1)
        store.mark_passed(job.id)
    store.enqueue(
        [Commit("app", f"refs/heads/q{n}", f"{n:040x}") for n in range(SAMPLES)], Trigger.PUSH
    )
    claims, floor = [], []
    for _ in range(SAMPLES):
        start = time.perf_counter()
        job = store.claim_next(max_running=SAMPLES + 1)
        claims.append(time.perf_counter() - start)
        start = time.perf_counter()
        with store.db.write() as conn:
            conn.execute("UPDATE builds SET message=? WHERE id=?", (f"m{job.id}", job.id))
        floor.append(time.perf_counter() - start)
    store.close()
    return claims, floor


def _writer(path: str, count: int, stamps) -> None:
    store = Store(Path(path))
    for n in range(count):
        time.sleep(0.013 * (n % 7) + 0.02)  # irregular, so polls and writes drift
        store.enqueue([Commit("app", "refs/heads/main", f"{n:040x}")], Trigger.MANUAL)
        stamps.put(time.time())


def wake_latency(root: Path, count: int = 40) -> list[float]:
    path = root / "wake.db"
    reader = Store(path)
    ctx = multiprocessing.get_context("spawn")
    stamps = ctx.Queue()
    proc = ctx.Process(target=_writer, args=(str(path), count, stamps))
    proc.start()
    seen, delays, version = 0, [], reader.data_version()
    deadline = time.monotonic() + 60
    while seen < count and time.monotonic() < deadline:
        current = reader.data_version()
        if current != version:
            version, now = current, time.time()
            while not stamps.empty():
                delays.append(now - stamps.get())
                seen += 1
        time.sleep(POLL)
    proc.join(10)
    reader.close()
    return delays


def idle_cpu(root: Path, seconds: float = 10.0) -> float:
    store = Store(root / "idle.db")
    start_cpu, deadline = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < deadline:
        store.data_version()
        time.sleep(POLL)
    return (time.process_time() - start_cpu) * 60.0 / seconds


def main() -> None:
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as tmp:
        root = Path(tmp)
        full, normal = enqueue_latency(root, "FULL"), enqueue_latency(root, "NORMAL")
        claims, floor = claim_latency(root)
        wake = wake_latency(root)
        idle = idle_cpu(root)
    ms = 1000.0
    rows = [
        ("enqueue, synchronous=FULL", full, "synchronous=NORMAL", normal),
        ("claim_next, 2000 in history", claims, "one-row UPDATE tx", floor),
    ]
    print(f"{'measure':<34}{'p50 ms':>9}{'p99 ms':>9}   {'baseline':<22}{'p50 ms':>9}{'ratio':>8}")
    for name, values, base_name, base in rows:
        p50, b50 = statistics.median(values), statistics.median(base)
        print(
            f"{name:<34}{p50 * ms:>9.2f}{pct(values, 0.99) * ms:>9.2f}   "
            f"{base_name:<22}{b50 * ms:>9.2f}{p50 / b50:>8.1f}"
        )
    w50 = statistics.median(wake)
    print(
        f"{'trigger seen by poller (n=' + str(len(wake)) + ')':<34}{w50 * ms:>9.1f}"
        f"{pct(wake, 0.99) * ms:>9.1f}   {'poll interval':<22}{POLL * ms:>9.1f}{w50 / POLL:>8.2f}"
    )
    print(f"{'idle poll CPU s/min (200 ms tick)':<34}{idle:>9.3f}")


if __name__ == "__main__":
    main()
