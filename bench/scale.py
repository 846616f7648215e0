"""Scale and stillness benchmark: every figure of issue 16 beside its target.

Run: ``python bench/scale.py [--quick] [--baseline REV]``. Real ``scratchd
run`` processes (host executor, echo builds) over repositories copied from
one small project with three branches and two tags. Where it makes sense a
figure is shown beside the code before this change (``--baseline``, default
the merge base with ``main``), measured in the same run: its ``daemon/`` tree
is ``git archive``d into the temporary directory and run from there.

Sections (each bounded: fixed sample counts and timeouts):

1. stillness: idle CPU seconds per minute and files changed under state_dir
   with 0, 100 and 1,000 repositories (baseline: 100).
2. 1,000 repositories: start-up to READY, RSS, inotify instances/watches,
   ``check-config`` wall time, a commit→running latency while a SIGHUP adds
   100 repositories.
3. trigger under load: commit→running with 1,000 repositories watched and
   both cores busy with builds (busy loops started as host steps are, at the
   default ``build_nice`` and ``build_sched_idle``), beside the same load at
   the daemon's own priority.
4. a year of history: 100,000 builds and their logs; ``scratchd builds`` and
   ``builds --repo R`` wall time; database size per 1,000 builds; retention's
   longest write transaction (batched, beside one transaction); start-up and
   kill -9 recovery with 1,000 queued builds.
5. the seed job (Go server, ``go build`` then internal/docker-scratch-push to
   a local docker-registry): commit → manifest in the registry minus the
   ``go build``, split per phase from the build log's timestamps.

``--quick`` shrinks every section to check the script; its figures are not
the benchmark's. Targets are printed, never asserted.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scale_history import cli_ms, history_rows, seed_rows
from scale_support import (
    ROOT,
    DaemonProc,
    baseline_code,
    burners,
    changed,
    commit,
    make_repos,
    pct,
    snapshot,
    step_argv,
    step_argv_before,
    stop_all,
)
from scratchd.config.model import DaemonConfig

MS = 1000.0


def idle(daemon: DaemonProc, seconds: float) -> tuple[float, int]:
    """CPU-s/min and files changed under state_dir while nothing happens."""
    daemon.wait_quiet()  # first scans and the status row
    before, cpu = snapshot(daemon.state.root), daemon.cpu_seconds()
    time.sleep(seconds)
    used = daemon.cpu_seconds() - cpu
    return used * 60 / seconds, changed(before, snapshot(daemon.state.root))


def latency(daemon: DaemonProc, repo: Path, timeout: float = 60, split: list | None = None):
    """Commit, then poll the database until that commit's build is running.

    ``split`` collects (commit→queued, queued→running): the watcher's part
    (inotify, reading the refs, the queue write) and the main loop's (wake,
    claim).
    """
    assert daemon.store is not None
    sha, t0 = commit(repo)  # t0: when ``git commit`` returned
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for b in daemon.store.list_builds(repo=repo.name, limit=3):
            if b.sha == sha and b.started_at is not None:
                if split is not None:
                    split.append((b.created_at - t0, b.started_at - b.created_at))
                return b.started_at - t0
        time.sleep(0.001)
    raise SystemExit(f"commit {sha[:8]} in {repo.name} never started building")


def finished(daemon: DaemonProc, repo: Path, timeout: float = 60) -> None:
    """Wait until ``repo``'s builds are done: a sample's build must not hold a slot.

    Back to back, the samples' own builds (slow beside the busy ones, at the
    builds' low priority) filled every ``max_concurrent_builds`` slot, and the
    next commit waited for a build to end: that is the pool's limit, not the
    trigger's latency this section measures.
    """
    assert daemon.store is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = daemon.store.list_builds(repo=repo.name, limit=3)
        if all(b.finished_at is not None for b in builds):
            return
        time.sleep(0.01)
    raise SystemExit(f"a build of {repo.name} did not finish in {timeout:.0f} s")


def run_daemon(work: Path, name: str, repos: list[Path], code=None, **kw) -> DaemonProc:
    daemon = DaemonProc(work / name, repos, code=code, **kw)
    daemon.seed_refs()
    return daemon


def stillness_rows(work: Path, repos: list[Path], old: Path | None, seconds: float) -> list:
    rows = []
    cases = [("0 repos", 0, None), ("100 repos", 100, None), (f"{len(repos)} repos", None, None)]
    if old is not None:
        cases.append(("100 repos, before", 100, old))
    for label, count, code in cases:
        chosen = repos if count is None else repos[:count]
        daemon = run_daemon(work, f"idle-{label.replace(' ', '-')}", chosen, code)
        daemon.start()
        try:
            cpu, writes = idle(daemon, seconds)
        finally:
            daemon.stop()
        target = "≤ 0.02" if count == 100 else ("≤ 0.05" if count is None else "")
        target = "before" if code is not None else target
        rows.append((f"idle CPU, {label}", f"{cpu:.3f} s/min", target, f"over {seconds:.0f} s"))
        rows.append((f"state-dir writes idle, {label}", f"{writes} files", "0", ""))
    return rows


def thousand_rows(work: Path, repos: list[Path], samples: int, old: Path | None) -> list:
    rows = []
    daemon = run_daemon(work, "thousand", repos)
    ready = daemon.start()
    try:
        quiet = daemon.wait_quiet()
        instances, watches = daemon.inotify()
        rows += [
            (f"start-up to READY, {len(repos)} repos", f"{ready * MS:.0f} ms", "< 5 s", ""),
            ("start-up to every repo scanned", f"{quiet * MS:.0f} ms", "< 5 s", "CPU quiet"),
            (f"RSS, {len(repos)} repos", f"{daemon.rss_mb():.1f} MB", "< 80 MB", ""),
            ("threads", daemon.status_field("Threads"), "", ""),
            ("inotify instances / watches", f"{instances} / {watches}", "≤ 128 / 8192", ""),
        ]
        for label, code in (("", None), (", before", old)):
            if label and code is None:
                continue
            took = cli_ms(daemon.config, "check-config", code=code, reps=3, ok=(0, 1))
            target = "before" if label else "< 2 s"
            note = f"median of 3, range {took[1]:.0f}-{took[2]:.0f} ms, CPU {took[3]:.0f} ms"
            rows.append((f"check-config{label}", f"{took[0]:.0f} ms", target, note))
        rows += load_rows(daemon, repos, samples, NOW)
        rows += reload_rows(work, daemon, repos)
    finally:
        daemon.stop()
    if old is not None:
        rows += footprint_before(work, repos, old, samples)
    return rows


def footprint_before(work: Path, repos: list[Path], old: Path, samples: int) -> list:
    """RSS, threads and the trigger under load of the code before this change."""
    daemon = run_daemon(work, "thousand-before", repos, old)
    daemon.start()
    try:
        daemon.wait_quiet()
        return [
            (f"RSS, {len(repos)} repos, before", f"{daemon.rss_mb():.1f} MB", "before", ""),
            ("threads, before", daemon.status_field("Threads"), "before", ""),
            *load_rows(daemon, repos, samples, BEFORE),
        ]
    finally:
        daemon.stop()


#: A process that sleeps 1 ms at a time and, when its stdin closes, prints how late each
#: wake-up was: the machine's own scheduling noise during a measurement, beside it.
OVERSLEEP = """
import sys, threading, time
late, done = [], threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
while not done.is_set():
    t = time.perf_counter(); time.sleep(0.001); late.append(time.perf_counter() - t - 0.001)
late.sort()
print(late[len(late) // 2], late[int(0.99 * len(late))], late[-1])
"""


#: (label, target p50, target p99, how the busy builds start) of each load case.
NOW = [
    ("builds as host steps start", "< 10 ms", "< 25 ms", step_argv),
    ("builds at the daemon's priority", "", "", lambda argv, nice, idle: argv),
]
BEFORE = [("before: builds as host steps started", "before", "before", step_argv_before)]


def load_rows(daemon: DaemonProc, repos: list[Path], samples: int, cases: list) -> list:
    """commit→running of ``samples`` commits while two busy builds run, per load case."""
    rows = []
    d = DaemonConfig()
    for label, *target, wrap in cases:
        hogs = burners(2, wrap, d.build_nice, d.build_sched_idle)
        probe = subprocess.Popen(
            [sys.executable, "-c", OVERSLEEP], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        try:
            time.sleep(1)
            split: list = []
            got = []
            for i in range(samples):
                repo = repos[(i * 37) % len(repos)]
                got.append(latency(daemon, repo, split=split))
                finished(daemon, repo)
        finally:
            noise = [float(v) * MS for v in probe.communicate(b"", timeout=60)[0].split()]
            stop_all(hogs)
        note = f"n={samples}, 2 busy cores, {label}"
        rows.append(("commit→running p50", f"{pct(got, 0.5) * MS:.1f} ms", target[0], note))
        rows.append(("commit→running p99", f"{pct(got, 0.99) * MS:.1f} ms", target[1], ""))
        rows.append(("  max", f"{max(got) * MS:.1f} ms", "", "from `git commit` returning"))
        for i, part in enumerate(("commit→queued", "queued→running")):
            values = [s[i] for s in split]
            figure = f"{pct(values, 0.5) * MS:.1f} ms"
            rows.append((f"  {part} p50", figure, "", f"p99 {pct(values, 0.99) * MS:.1f} ms"))
        rows.append(
            (
                "  machine: 1 ms sleep late by",
                f"{noise[0]:.1f} ms",
                "",
                f"p50; p99 {noise[1]:.1f} ms, max {noise[2]:.1f} ms (nice 0, same window)",
            )
        )
    return rows


def reload_rows(work: Path, daemon: DaemonProc, repos: list[Path]) -> list:
    extra = make_repos(work / "repos", len(repos) + 100)[len(repos) :]
    daemon.write_config(repos + extra)
    assert daemon.proc is not None and daemon.store is not None
    t0 = time.monotonic()
    daemon.proc.send_signal(1)  # SIGHUP
    during = latency(daemon, repos[1])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = daemon.store.daemon_info()
        if info is not None and len(info.repos) == len(repos) + len(extra):
            break
        time.sleep(0.01)
    took = time.monotonic() - t0
    return [
        ("SIGHUP +100 repos: reload", f"{took * MS:.0f} ms", "", ""),
        ("commit→running during it", f"{during * MS:.1f} ms", "no pause", ""),
    ]


def merge_base() -> str | None:
    out = subprocess.run(
        ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"], capture_output=True, text=True
    )
    return out.stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run to check the script")
    parser.add_argument("--baseline", help="git revision of the code to compare with")
    parser.add_argument("--skip", action="append", default=[], help="section name to skip")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the store's own notes would drown the table
    n_repos, idle_s, samples, history = (150, 10.0, 20, 10_000) if args.quick else (
        1000, 60.0, 100, 100_000
    )  # fmt: skip
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="scratchd-scale-") as tmp:
        work = Path(tmp)
        wanted = {"stillness", "thousand"} - set(args.skip)
        repos = make_repos(work / "repos", n_repos) if wanted else []  # the seed needs none
        rev = args.baseline or merge_base()
        old = baseline_code(work, rev) if rev else None
        sections = {
            "stillness": lambda: stillness_rows(work, repos, old, idle_s),
            "thousand": lambda: thousand_rows(work, repos, samples, old),
            "history": lambda: history_rows(work, history, old),
            "seed": lambda: seed_rows(work, samples=3 if args.quick else 10),
        }
        for name, section in sections.items():
            if name not in args.skip:
                rows += [(f"[{name}]", "", "", ""), *section()]
    print_table(rows, f"baseline: {rev[:12] if rev else 'none'}")


def print_table(rows: list, title: str) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>14}  {'target':<10}  note ({title})")
    for name, value, target, note in rows:
        print(f"{name:<{width}}  {value:>14}  {target:<10}  {note}")


if __name__ == "__main__":
    main()
