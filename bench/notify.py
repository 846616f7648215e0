"""Notification benchmark: do notifications to a dead receiver slow builds down?

Run: ``python bench/notify.py [--quick]``. Starts a real ``scratchd run``
(host executor, a one-line echo build) over 10 repositories twice:

- without any sink (the baseline);
- with a webhook sink on every event whose receiver is down for the whole
  burst (connection refused: the sender retries with backoff all along).

Each run makes 100 commits, one after the other round-robin over the
repositories, and measures from ``git commit`` returning to the build entering
``running`` in the state database. Target: the p99 with notifications within
10% of the p99 without. Afterwards the receiver comes up and the script prints
how long the sender takes to deliver the backlog (every event, once).

``--quick`` makes 20 commits to check the script itself.
"""

from __future__ import annotations

import argparse
import base64
import collections
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.daemon import Bench, pct  # noqa: E402
from tests.notify.receiver import Receiver  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench signing key, 32 bytes long").decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(root: Path, commits: int, port: int | None) -> tuple[list[float], Bench]:
    bench = Bench(root, 10, poll_interval="60s", poll_only=False)
    if port is not None:
        secret = root / "hook.secret"
        secret.write_text(SECRET)
        with bench.config.open("a") as f:
            f.write(
                '\n[notify]\nretry_delay = "1s"\nretry_max_delay = "5s"\n\n'
                f'[notify.sink.hook]\ntype = "webhook"\nurl = "http://127.0.0.1:{port}/hook"\n'
                f'secret_file = "{secret}"\n'
            )
    bench.seed_refs()
    bench.start()
    samples = [bench.latency(bench.repos[i % 10], timeout=60) for i in range(commits)]
    bench.settle()
    return samples, bench


def backlog(bench: Bench, port: int) -> tuple[int, float, int]:
    """Bring the receiver up; (events delivered, seconds it took, duplicates)."""
    store = bench.store
    expected = {e.event_id for e in store.events()}
    receiver = Receiver(port=port).start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 300:
        got = collections.Counter(r["headers"]["webhook-id"] for r in receiver.accepted)
        if set(got) >= expected:
            break
        time.sleep(0.1)
    took = time.monotonic() - t0
    receiver.stop()
    return len(set(got) & expected), took, sum(n - 1 for n in got.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    commits = 20 if parser.parse_args().quick else 100
    with tempfile.TemporaryDirectory(prefix="scratchd-bench-notify-") as tmp:
        base, plain = run(Path(tmp) / "plain", commits, None)
        plain.stop()
        port = free_port()
        notified, bench = run(Path(tmp) / "notify", commits, port)
        pending = len(bench.store.due_deliveries(time.time() + 3600, limit=100000))
        delivered, took, dupes = backlog(bench, port)
        bench.stop()
    print(f"{'commit -> running (ms)':<34}{'n':>5}{'p50':>9}{'p99':>9}")
    for name, xs in (("no notifications", base), ("webhook, receiver down", notified)):
        print(f"{name:<34}{len(xs):>5}{pct(xs, 0.5) * 1000:>9.1f}{pct(xs, 0.99) * 1000:>9.1f}")
    ratio = pct(notified, 0.99) / pct(base, 0.99)
    print(f"p99 ratio (target <= 1.10): {ratio:.2f}")
    print(f"backlog while down: {pending} deliveries pending")
    print(f"receiver back: {delivered} events delivered in {took:.1f}s, {dupes} duplicates")


if __name__ == "__main__":
    main()
