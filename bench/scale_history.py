"""``bench/scale.py`` sections 4 and 5: a year of history, and the seed job per phase."""

from __future__ import annotations

import gzip
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from registry_floor import cores, registry_cpu_seconds
from scale_support import (
    DaemonProc,
    WorkRepo,
    child_env,
    git,
    make_repos,
    pct,
    render_config,
    run_registry,
)
from scratchd.store import StateDir, Store, prune_builds, read_log

MS = 1000.0
HISTORY_REPOS = 100


def fill_history(state: StateDir, count: int, repos: list[str]) -> None:
    """``count`` finished builds over ``repos`` with a small gzipped log each."""
    store = Store(state.db)
    now = time.time() - 365 * 86400
    rows = []
    for n in range(count):
        repo = repos[n % len(repos)]
        failed = n % 10 == 0
        t = now + n * 315.0  # one build every ~5 minutes for a year
        image = "[]" if failed else f'["sha256:{n:064x}"]'
        message = "step 'go build' failed: exit code 2" if failed else None
        log = str(state.log_path(repo, n + 1))  # as the daemon records it (plain name)
        work = str(state.work_dir(repo, n + 1))
        status = "failed" if failed else "passed"
        rows.append((repo, f"{n:040x}", status, t, t, t + 30, message, image, log, work))
    with store.db.write() as conn:
        conn.executemany(
            "INSERT INTO builds (repo, ref, branch, sha, trigger, status, created_at,"
            " started_at, finished_at, message, images, log_path, work_dir)"
            " VALUES (?, 'refs/heads/main', 'main', ?, 'push', ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    line = b"2026-01-01T00:00:00.000Z stdout build/compile: building\n" * 40
    blob = gzip.compress(line, mtime=0)
    for build_id in range(1, count + 1):
        path = state.log_path(repos[(build_id - 1) % len(repos)], build_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.with_name(path.name + ".gz").write_bytes(blob)
    store.close()


def cli_ms(
    config: Path, *args: str, code: Path | None = None, reps: int = 7, ok: tuple = (0,)
) -> tuple:
    """(median, min, max) wall ms and median CPU ms of ``scratchd ARGS --config CONFIG``.

    One untimed run first (it writes the .pyc files). The CPU time (user +
    system, from the children's rusage) is what the command itself costs,
    whatever else the machine is doing; the wall time is what a person waits.
    """
    env = child_env(code)
    times, cpu = [], []
    for _ in range(reps + 1):
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "scratchd", *args, "--config", str(config)],
            capture_output=True,
            check=False,
            env=env,
        )
        times.append(time.monotonic() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
        if done.returncode not in ok:
            raise SystemExit(f"scratchd {' '.join(args)}: exit {done.returncode}: {done.stderr}")
    timed = times[1:]
    return (
        statistics.median(timed) * MS,
        min(timed) * MS,
        max(timed) * MS,
        statistics.median(cpu[1:]) * MS,
    )


def longest_write(db: Path, state: StateDir, repos: list[str], batch: int) -> tuple[float, float]:
    """(total s, longest transaction ms) pruning every repo to keep_builds=50."""
    store = Store(db)
    spans: list[float] = []
    began = [0.0]

    def trace(sql: str) -> None:
        if sql.startswith("BEGIN"):
            began[0] = time.perf_counter()
        elif sql.startswith("COMMIT"):
            spans.append(time.perf_counter() - began[0])

    store.db.conn().set_trace_callback(trace)
    t0 = time.perf_counter()
    for repo in repos:
        prune_builds(store, state, repo, 50, batch=batch)
    total = time.perf_counter() - t0
    store.close()
    return total, max(spans) * MS


def spread(figures: tuple) -> str:
    """The note beside a median: its range over the runs."""
    return f"median of 7, range {figures[1]:.0f}-{figures[2]:.0f} ms, CPU {figures[3]:.0f} ms"


def history_rows(work: Path, count: int, old: Path | None) -> list:
    repos = make_repos(work / "repos", HISTORY_REPOS)
    names = [p.name for p in repos]
    daemon = DaemonProc(work / "history", repos, max_concurrent_builds=2)
    fill_history(daemon.state, count, names)
    rows = []
    for label, code in (("", None), (", before", old)):
        if label and code is None:
            continue
        every = cli_ms(daemon.config, "builds", code=code)
        one = cli_ms(daemon.config, "builds", "--repo", names[7], code=code)
        target = "before" if label else "< 100 ms"
        rows.append((f"scratchd builds{label}", f"{every[0]:.0f} ms", target, spread(every)))
        rows.append((f"builds --repo R{label}", f"{one[0]:.0f} ms", target, spread(one)))
    store = Store(daemon.state.db, create=False)
    t0 = time.perf_counter()
    store.list_builds(repo=names[7], limit=20)
    rows.append(("  of which the query", f"{(time.perf_counter() - t0) * MS:.2f} ms", "", ""))
    store.close()
    size = daemon.state.db.stat().st_size / (count / 1000) / 1024
    rows.append(("database per 1,000 builds", f"{size:.0f} KiB", "< 512 KiB", "documented"))

    for label, batch in (("batched", 200), ("one transaction, before", 10**9)):
        copy = work / f"prune-{batch}"
        shutil.copytree(daemon.state.root, copy / "state")
        state = StateDir(copy / "state")
        with sqlite3.connect(state.db) as conn:  # the copy's rows name the copy's files
            for column in ("log_path", "work_dir"):
                conn.execute(
                    f"UPDATE builds SET {column} = replace({column}, ?, ?)",  # noqa: S608
                    (str(daemon.state.root), str(state.root)),
                )
        total, worst = longest_write(state.db, state, names, batch)
        note = f"prune to 50/repo: {total:.1f} s in all"
        rows.append((f"retention longest lock, {label}", f"{worst:.1f} ms", "bounded", note))
        shutil.rmtree(copy)
    rows += recovery_rows(daemon, names)
    return rows


def recovery_rows(daemon: DaemonProc, names: list[str]) -> list:
    """Start-up with 1,000 queued builds, then kill -9 and start again."""
    store = Store(daemon.state.db)
    now = time.time()
    with store.db.write() as conn:
        conn.executemany(
            "INSERT INTO builds (repo, ref, branch, sha, trigger, status, created_at)"
            " VALUES (?, 'refs/heads/main', 'main', ?, 'manual', 'queued', ?)",
            [(names[n % len(names)], f"{n + 10**9:040x}", now) for n in range(1000)],
        )
    store.close()
    daemon.seed_refs()
    ready = daemon.start()
    time.sleep(1)
    daemon.kill9()
    again = daemon.start()
    daemon.stop()
    return [
        ("start-up, 1,000 queued", f"{ready * MS:.0f} ms", "< 2 s", "to READY"),
        ("kill -9 recovery, 1,000 queued", f"{again * MS:.0f} ms", "< 2 s", "to READY"),
    ]


GO_MAIN = 'package main\n\nimport "fmt"\n\nfunc main() { fmt.Println("ok") }\n'
SEED_YML = """\
build:
  steps:
    - script:
        name: go build
        code: |
          export CGO_ENABLED=0 GOPROXY=off GOFLAGS=-mod=mod GOCACHE={cache} GOPATH={cache}/path
          echo go-start
          go build -ldflags "-s -w" -o "$WERCKER_OUTPUT_DIR/app" .
          echo go-end
deploy:
  steps:
    - internal/docker-scratch-push:
        repository: {registry}/bench/seed
        tag: $WERCKER_GIT_COMMIT
        cmd: /app
"""


def stamp(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")).timestamp()


#: The build log's lines that end each phase (first occurrence), in order.
SEED_MARKS = (
    ("checkout", " checking out "),
    ("plan", " === pipeline build"),
    ("go-start", " go-start"),
    ("go-end", " go-end"),
    ("bake", " baking "),
    ("image", " image sha256:"),
    ("push", " pushing "),
    ("pushed", " pushed "),
)

#: Phase name → who owns that code: where to look when it grows.
REGISTRY_CPU = "registry CPU (excluded: inside push)"
SEED_OWNERS = {
    "trigger (commit→running)": "watcher + scheduler",
    "start→checkout": "build log, state paths",
    "checkout+plan": "mirror fetch, tree export, wercker.yml compile",
    "environment+step start": "host backend setup, step supervisor",
    "go build (excluded)": "the compiler",
    "step end+deploy environment": "step exit, next pipeline's setup",
    "bake": "layer tar + gzip, config, manifest",
    "attest": "SBOM + provenance",
    "push": "registry client",
    "record": "outcome, pushes, status in the store",
    REGISTRY_CPU: "docker-registry's own work, all its threads",
}


def phases(log: str, started: float, committed: float, finished: float) -> dict[str, float]:
    """Phase durations (s) from the build log's per-line timestamps (ms resolution)."""
    marks: dict[str, float] = {}
    for line in log.splitlines():
        for key, needle in SEED_MARKS:
            if needle in line and key not in marks:
                marks[key] = stamp(line)
    return {
        "trigger (commit→running)": started - committed,
        "start→checkout": marks["checkout"] - started,
        "checkout+plan": marks["plan"] - marks["checkout"],
        "environment+step start": marks["go-start"] - marks["plan"],
        "go build (excluded)": marks["go-end"] - marks["go-start"],
        "step end+deploy environment": marks["bake"] - marks["go-end"],
        "bake": marks["image"] - marks["bake"],
        "attest": marks["push"] - marks["image"],
        "push": marks["pushed"] - marks["push"],
        "record": finished - marks["pushed"],
    }


def seed_rows(work: Path, samples: int) -> list:
    if shutil.which("go") is None or shutil.which("docker-registry") is None:
        return [("seed job", "skipped", "", "needs golang-go and docker-registry")]
    with run_registry(work / "registry") as registry:
        repo = WorkRepo(work / "seed")
        cache = work / "go-cache"
        yml = SEED_YML.format(cache=cache, registry=registry.host)
        repo.commit(
            "seed",
            files={"wercker.yml": yml, "main.go": GO_MAIN, "go.mod": "module seed\n\ngo 1.19\n"},
        )
        table = {"name": "seed", "path": str(repo.path), "pipelines": ["build", "deploy"]}
        daemon = DaemonProc(work / "seed-daemon", [], max_concurrent_builds=1)
        daemon.config.write_text(
            render_config(daemon.daemon, [table], {registry.host: {"insecure": True}})
        )
        daemon.start()
        try:
            pid = registry.process.pid
            runs = [one_seed(daemon, repo, pid) for _ in range(samples + 1)][1:]  # warms caches
        finally:
            daemon.stop()
    return seed_table(runs)


def seed_table(runs: list[dict[str, float]]) -> list:
    """The total beside its target, then each phase: median, share of the total, owner."""
    beyond = [sum(v for k, v in r.items() if "excluded" not in k) for r in runs]
    total = pct(beyond, 0.5)
    rows = [
        (
            "seed: commit→manifest minus go build",
            f"{total * MS:.0f} ms",
            "< 100 ms",
            f"median of {len(runs)}; range {min(beyond) * MS:.0f}-{max(beyond) * MS:.0f} ms;"
            " its phases below",
        )
    ]
    # no client makes the registry's work take less wall time than spread over every core
    floors = [b - r["push"] + r[REGISTRY_CPU] / cores() for b, r in zip(beyond, runs, strict=True)]
    rows.append(
        (
            "seed: least total with today's other phases",
            f"{pct(floors, 0.5) * MS:.0f} ms",
            "< 100 ms",
            f"the push at its floor: registry CPU / {cores()} cores; every other phase as measured",
        )
    )
    for key in runs[0]:
        value = statistics.median(r[key] for r in runs)
        share = "" if "excluded" in key else f"{value / total:4.0%} of it, "
        rows.append((f"seed:   {key}", f"{value * MS:.0f} ms", "", share + SEED_OWNERS[key]))
    return rows


def one_seed(daemon: DaemonProc, repo: WorkRepo, registry_pid: int) -> dict[str, float]:
    assert daemon.store is not None
    registry_cpu = registry_cpu_seconds(registry_pid)  # the registry is idle between builds
    (repo.path / "main.go").write_text(GO_MAIN.replace('"ok"', f'"ok {time.time()}"'))
    git(repo.path, "add", "main.go")
    committed = time.time()
    sha = repo.commit()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [b for b in daemon.store.list_builds(limit=3) if b.sha == sha]
        if found and found[0].finished_at is not None:
            build = found[0]
            break
        time.sleep(0.01)
    else:
        raise SystemExit(f"seed build of {sha[:8]} did not finish")
    if build.status != "passed":
        raise SystemExit(f"seed build {build.id} {build.status}: {build.message}")
    log = ""
    while " pushed " not in log and time.monotonic() < deadline:
        log = read_log(daemon.state.log_path("seed", build.id)) or ""
        time.sleep(0.01)
    assert build.started_at is not None and build.finished_at is not None
    figures = phases(log, build.started_at, committed, build.finished_at)
    figures[REGISTRY_CPU] = registry_cpu_seconds(registry_pid) - registry_cpu
    return figures
