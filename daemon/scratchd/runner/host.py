"""The host backend: every step is a process on this machine.

Each step is written to a script file and started as the leader of a new
session (so it is its own process group) with the pipeline environment,
in the source dir. Its stdout and stderr are read with a selector in the
calling thread, so ``on_line`` is always called from the thread that
called :meth:`HostBackend.run` and the deadlines are checked between reads.

Background processes do not outlive their step. Wercker's Docker runs
ended with the container, taking every stray process with it; the host
has no container, so the nearest equivalent is to end the step's process
group when the step's shell exits (SIGTERM, then SIGKILL after a grace
period). A process that leaves the group on purpose (``setsid``, a
daemonising double fork) escapes this: the backend stops reading its
output shortly after the step ends but cannot find it to kill it.

Nor do they outlive the daemon. A ``kill -9`` of the daemon leaves no one to
end the group, so each step is started under :mod:`scratchd.runner.reaper`,
a small supervisor that leads the group, runs the step's shell as its child
and SIGKILLs the group when the kernel tells it (parent-death signal) that
the daemon is gone. Under systemd ``KillMode=mixed`` does the same; this
covers ``scratchd run`` in a terminal and ``scratchd build``. The kernel
sends that signal when the *thread* that started the supervisor exits: the
thread calling :meth:`HostBackend.run` starts it and waits for it before
returning, so it always outlives the step; keep it that way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from scratchd.errors import BackendError
from scratchd.models import BoxDigest
from scratchd.runner import reaper
from scratchd.runner.backend import LineSink, PipelineJob, StepCommand
from scratchd.runner.process import terminate_group
from scratchd.runner.stepwatch import LineSplitter, StepClock

log = logging.getLogger(__name__)

#: Variables of the daemon's own environment a host step inherits. Anything
#: else (tokens, credentials the daemon was started with) stays out.
INHERITED_ENV = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")

_READ_SIZE = 64 * 1024


def default_shell() -> tuple[str, ...]:
    """bash where the host has it, else sh.

    wercker ran script steps with the box's ``/bin/bash``, and real
    wercker.yml files lean on it (``[[ ]]``, ``source``, ``set -o pipefail``);
    Debian's ``/bin/sh`` is dash, which rejects those.
    """
    return ("/bin/bash",) if os.access("/bin/bash", os.X_OK) else ("/bin/sh",)


class HostBackend:
    """Runs steps as host processes. See the module docstring for the rules."""

    def __init__(
        self,
        *,
        kill_grace: float = 5.0,
        drain_timeout: float = 2.0,
        shell: tuple[str, ...] | None = None,
        inherit: tuple[str, ...] = INHERITED_ENV,
        environ: Mapping[str, str] | None = None,
        nice: int = 0,
        idle: bool = False,
        python_supervisor: bool = False,
    ) -> None:
        self._kill_grace = kill_grace
        # Below the daemon's control loop, so busy builds never delay noticing the
        # next commit; :mod:`scratchd.runner.reaper` applies it to the step's session.
        self._nice, self._idle = nice, idle
        self._python_supervisor = python_supervisor  # the fallback, whatever the host has
        self._drain_timeout = drain_timeout
        self._shell = shell or default_shell()
        base = os.environ if environ is None else environ
        self._base_env = {k: base[k] for k in inherit if k in base}
        self._job: PipelineJob | None = None
        self._scripts: Path | None = None
        self._count = 0

    def setup(self, job: PipelineJob) -> None:
        """Check the source dir, create the others, and a private dir for step scripts."""
        self.teardown()  # a backend reused without teardown must not leak the old run
        if not job.dirs.source.is_dir():
            raise BackendError(f"source directory {job.dirs.source} does not exist")
        try:
            for d in (job.dirs.output, job.dirs.cache, job.dirs.report):
                d.mkdir(parents=True, exist_ok=True)
            self._scripts = Path(tempfile.mkdtemp(prefix="scratchd-steps-"))
        except OSError as exc:
            raise BackendError(f"cannot prepare pipeline directories: {exc}") from exc
        self._job = job

    def box_images(self) -> tuple[BoxDigest, ...]:
        """None: steps run on the host itself, whatever box the pipeline names."""
        return ()

    def env_paths(self) -> Mapping[str, str]:
        """The real host paths: on the host, the step sees what the daemon sees."""
        dirs = self._require_job().dirs
        return {
            "WERCKER_ROOT": str(dirs.root),
            "WERCKER_SOURCE_DIR": str(dirs.source),
            "WERCKER_OUTPUT_DIR": str(dirs.output),
            "WERCKER_CACHE_DIR": str(dirs.cache),
            "WERCKER_REPORT_DIR": str(dirs.report),
            "WERCKER_PIPELINE_DIR": str(dirs.pipeline),
        }

    def run(self, command: StepCommand, on_line: LineSink, cancel: threading.Event) -> int:
        """Run one step to completion; see :mod:`scratchd.runner.backend` for the contract."""
        job = self._require_job()
        cwd = job.dirs.source / command.cwd if command.cwd else job.dirs.source
        if not cwd.is_dir():
            on_line("stderr", f"cwd {command.cwd!r} is not a directory in the source dir")
            return 1
        argv = reaper.command(
            self._argv(command),
            os.getpid(),
            nice=self._nice,
            idle=self._idle,
            python=self._python_supervisor,
        )
        env = {**self._base_env, **job.env, **command.env}
        fields = job.journal_fields(STEP=command.name)
        log.debug("starting host step", extra=fields)
        try:
            proc = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            raise BackendError(f"cannot start step {command.name!r}: {exc}") from exc
        clock = StepClock(
            command.name, command.command_timeout, command.no_response_timeout, cancel
        )
        try:
            self._pump(proc, on_line, clock)
        finally:
            terminate_group(proc.pid, self._kill_grace)
            proc.wait()
        log.debug("host step exited %s", proc.returncode, extra=fields)
        return proc.returncode

    def teardown(self) -> None:
        """Remove the step scripts. Idempotent; fine after a failed or missing setup."""
        if self._scripts is not None:
            shutil.rmtree(self._scripts, ignore_errors=True)
            self._scripts = None
        self._job = None

    # -- internals ---------------------------------------------------------

    def _require_job(self) -> PipelineJob:
        if self._job is None or self._scripts is None:
            raise BackendError("host backend used before setup()")
        return self._job

    def _argv(self, command: StepCommand) -> list[str]:
        """Write the script to a file: ``#!`` scripts run themselves, others go to the shell."""
        assert self._scripts is not None
        self._count += 1
        path = self._scripts / f"step-{self._count:03d}"
        path.write_text(command.script)
        path.chmod(0o700)
        return [str(path)] if command.script.startswith("#!") else [*self._shell, str(path)]

    def _pump(self, proc: subprocess.Popen, on_line: LineSink, clock: StepClock) -> None:
        """Stream output until both pipes close; stop the step if the clock says so."""
        reader = _PipeReader(proc, on_line, clock)
        exited_at: float | None = None
        try:
            while True:
                reason = clock.stop_reason()
                if reason is not None:
                    terminate_group(proc.pid, self._kill_grace)
                    reader.drain(self._drain_timeout)
                    raise reason
                if exited_at is None and proc.poll() is not None:
                    # The shell is done: end its strays so their pipes close too.
                    exited_at = time.monotonic()
                    terminate_group(proc.pid, self._kill_grace)
                if exited_at is not None and (
                    not reader.open() or time.monotonic() - exited_at > self._drain_timeout
                ):
                    return  # past the drain time, only a process outside the group is left
                wait = min(0.1, clock.remaining() + 0.01)
                if reader.open():
                    reader.read(wait)
                else:  # output closed: only the exit is left to wait for
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(wait)
        finally:
            reader.close()


class _PipeReader:
    """Non-blocking reads of a process's stdout and stderr, split into lines."""

    def __init__(self, proc: subprocess.Popen, on_line: LineSink, clock: StepClock) -> None:
        self._on_line = on_line
        self._clock = clock
        self._selector = selectors.DefaultSelector()
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            # The pipe rides in ``data`` too: the selector types its key's fileobj loosely.
            self._selector.register(pipe, selectors.EVENT_READ, (name, LineSplitter(), pipe))

    def open(self) -> bool:
        return bool(self._selector.get_map())

    def read(self, timeout: float) -> None:
        for key, _ in self._selector.select(timeout):
            name, splitter, pipe = key.data
            try:
                data = os.read(key.fd, _READ_SIZE)
            except BlockingIOError:
                continue
            if data:
                self._clock.output_seen()
                self._emit(name, splitter.feed(data))
            else:
                self._emit(name, splitter.flush())
                self._selector.unregister(pipe)
                pipe.close()

    def drain(self, timeout: float) -> None:
        """After a kill: deliver what is still buffered, for at most ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while self.open() and time.monotonic() < deadline:
            self.read(0.05)

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            name, splitter, pipe = key.data
            self._emit(name, splitter.flush())
            self._selector.unregister(pipe)
            pipe.close()
        self._selector.close()

    def _emit(self, stream: str, lines: list[str]) -> None:
        for line in lines:
            self._on_line(stream, line)
