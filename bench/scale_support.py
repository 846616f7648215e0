"""Helpers for ``bench/scale.py``: many repositories, daemon processes, /proc readings.

Repositories are made once (a small project with a few branches and tags)
and copied, so 1,000 of them take seconds, not minutes. A daemon can run
this checkout's code or another revision's (``git archive`` into a temporary
directory, put first on ``PYTHONPATH``): that is how the bench measures
today's code and the code before this change in the same run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from scratchd.runner import reaper
from scratchd.store import StateDir, Store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.git.repos import WorkRepo, git  # noqa: E402
from tests.support.daemon import QUICK_YML, render_config  # noqa: E402
from tests.support.services import run_registry  # noqa: E402

__all__ = ["WorkRepo", "git", "render_config", "run_registry"]  # for scale_history

CLK_TCK = os.sysconf("SC_CLK_TCK")
BRANCHES = ("main", "dev", "release")
TAGS = ("v1", "v2")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def make_repos(root: Path, count: int) -> list[Path]:
    """``count`` copies of one project with a few branches and tags."""
    template = root / "template"
    if not template.exists():
        work = WorkRepo(template)
        work.commit("wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
        for branch in BRANCHES[1:]:
            git(template, "branch", branch)
        for tag in TAGS:
            git(template, "tag", tag)
    paths = []
    for i in range(count):
        path = root / f"r{i:04d}"
        if not path.exists():
            shutil.copytree(template, path, symlinks=True)
        paths.append(path)
    return paths


def commit(repo: Path) -> tuple[str, float]:
    """A new commit in ``repo`` (a fresh counter), as a user's ``git commit``.

    Returns its sha and when ``git commit`` returned (before the sha is read).
    """
    (repo / "counter.txt").write_text(f"{time.time_ns()}\n")
    git(repo, "commit", "-q", "-a", "-m", f"{repo.name} {time.time_ns()}")
    done = time.time()
    return git(repo, "rev-parse", "HEAD"), done


def child_env(code: Path | None = None) -> dict[str, str]:
    """Environment for a ``scratchd`` child: ``code`` first on the path, bytecode cached.

    An installed scratchd has its ``.pyc`` files; a shell or CI runner that sets
    ``PYTHONDONTWRITEBYTECODE`` would make every child compile every module
    from source, which is start-up time no user pays. So children write their
    ``__pycache__`` (git ignores it) like an installed package has it.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPYCACHEPREFIX", None)
    env.pop("NOTIFY_SOCKET", None)
    if code is not None:
        env["PYTHONPATH"] = str(code)
    return env


def baseline_code(root: Path, rev: str) -> Path | None:
    """The ``daemon/`` source tree of ``rev`` (the code before this change), or None."""
    target = root / f"code-{rev[:12]}"
    if target.exists():
        return target / "daemon"
    target.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "daemon"], capture_output=True, check=False
    )
    if archive.returncode != 0:
        return None
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target / "daemon"


class DaemonProc:
    """One ``scratchd run`` over ``repos`` (their tips marked seen: an idle start)."""

    def __init__(
        self, root: Path, repos: list[Path], *, code: Path | None = None, **daemon: object
    ) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.repos = repos
        self.state = StateDir(root / "state")
        self.config = root / "scratchd.toml"
        self.code = code
        self.daemon = {
            "state_dir": str(self.state.root),
            "executor": "host",
            "poll_interval": "60s",
            "max_concurrent_builds": 8,
            **daemon,
        }
        self.write_config(repos)
        self.proc: subprocess.Popen | None = None
        self.store: Store | None = None

    def write_config(self, repos: list[Path]) -> None:
        tables = [
            {"name": p.name, "path": str(p), "branches": list(BRANCHES), "tags": ["v*"]}
            for p in repos
        ]
        tmp = self.config.with_suffix(".tmp")
        tmp.write_text(render_config(self.daemon, tables))
        tmp.replace(self.config)

    def seed_refs(self) -> None:
        store = Store(self.state.db)
        with store.db.write() as conn:
            for path in self.repos:
                sha = git(path, "rev-parse", "HEAD")
                refs = [f"refs/heads/{b}" for b in BRANCHES] + [f"refs/tags/{t}" for t in TAGS]
                conn.executemany(
                    "INSERT OR REPLACE INTO refs (repo, ref, sha, updated_at) VALUES (?,?,?,?)",
                    [(path.name, ref, sha, time.time()) for ref in refs],
                )
        store.close()

    def env(self) -> dict[str, str]:
        return child_env(self.code)

    def start(self, timeout: float = 120) -> float:
        """Start; returns seconds until the daemon's status row names it (READY)."""
        log = open(self.root / "daemon.log", "ab")  # noqa: SIM115 - the child keeps it
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "scratchd", "run", "--config", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env(),
        )
        log.close()
        self.started = t0
        while time.monotonic() - t0 < timeout:
            if self.state.db.exists():
                self.store = self.store or Store(self.state.db, create=False)
                info = self.store.daemon_info()
                if info is not None and info.pid == self.proc.pid and info.status != "stopped":
                    return time.monotonic() - t0
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        raise SystemExit(f"daemon did not start; see {self.root / 'daemon.log'}")

    def wait_quiet(self, window: float = 1.0, timeout: float = 120) -> float:
        """Seconds from start until a ``window`` with < 10 ms of CPU (start-up scans done)."""
        deadline = time.monotonic() + timeout
        last = self.cpu_seconds()
        while time.monotonic() < deadline:
            time.sleep(window)
            now = self.cpu_seconds()
            if now - last < 0.01:
                return time.monotonic() - window - self.started
            last = now
        return float("nan")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.store is not None:
            self.store.close()
            self.store = None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    # -- /proc -------------------------------------------------------------------

    def cpu_seconds(self) -> float:
        assert self.proc is not None
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime

    def status_field(self, name: str) -> str:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
        return ""

    def rss_mb(self) -> float:
        return int(self.status_field("VmRSS").split()[0]) / 1024

    def inotify(self) -> tuple[int, int]:
        """(inotify instances, watches) the daemon holds, from /proc/PID/fd{,info}."""
        assert self.proc is not None
        instances = watches = 0
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        for fd in os.listdir(fd_dir):
            try:
                if os.readlink(fd_dir / fd) != "anon_inode:inotify":
                    continue
                info = Path(f"/proc/{self.proc.pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            instances += 1
            watches += info.count("inotify wd:")
        return instances, watches


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            found[path] = (st.st_size, st.st_mtime_ns)
    return found


def changed(before: dict, after: dict) -> int:
    return sum(1 for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def step_argv(argv: list[str], nice: int, idle: bool) -> list[str]:
    """``argv`` as the host backend starts a step: under the step supervisor, which
    applies the builds' priority (``nice``, ``idle``: ``SCHED_IDLE``)."""
    return reaper.command(argv, os.getpid(), nice=nice, idle=idle)


def step_argv_before(argv: list[str], nice: int, idle: bool) -> list[str]:
    """``argv`` as the host backend started a step before: ``nice(1)`` in front."""
    return ["nice", "-n", str(nice), *reaper.command(argv, os.getpid())]


def burners(count: int, wrap: Callable, nice: int, idle: bool) -> list[subprocess.Popen]:
    """``count`` busy loops, each a session of its own like a host step: ``wrap(argv,
    nice, idle)`` starts them as the host backend does (:func:`step_argv`)."""
    argv = [sys.executable, "-c", "while True: pass"]
    return [subprocess.Popen(wrap(argv, nice, idle), start_new_session=True) for _ in range(count)]


def stop_all(procs: list[subprocess.Popen]) -> None:
    """SIGKILL each session started by :func:`burners`: the supervisor and its loop."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    for proc in procs:
        proc.wait(10)
