"""Host steps die with the daemon: a ``kill -9`` of it leaves no process of a step behind.

The parent here is a small daemon-like Python process: it runs a step with
:class:`HostBackend` from a worker thread, as the daemon does, and prints
the step's output. The step starts a background and a foreground
``sleep 300``; every process of it carries a marker in its environment, so
``/proc`` tells whether any survived the parent. Each test runs with both
supervisors: the bash one (``setpriv``) and the Python fallback.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.runner.conftest import run_step

SUPERVISORS = pytest.mark.parametrize("python", [False, True], ids=["bash", "python"])

PARENT = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from scratchd.runner.backend import StepCommand
    from scratchd.runner.host import HostBackend
    from tests.runner.conftest import pipeline_job

    marker = sys.argv[2]
    backend = HostBackend(python_supervisor=sys.argv[3] == "python")
    backend.setup(pipeline_job(Path(sys.argv[1]), env={"STEP_MARKER": marker}))
    script = "sleep 300 &\\necho started\\nsleep 300\\n"

    def on_line(stream, text):
        print(text, flush=True)

    def work():
        backend.run(StepCommand(name="sleepy", script=script), on_line, threading.Event())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    """
)


def marked(marker: str) -> list[int]:
    """Live processes whose environment holds ``STEP_MARKER=<marker>``."""
    needle = f"STEP_MARKER={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if needle in environ.split(b"\0") and stat[stat.rfind(")") + 2] not in "ZX":
            found.append(int(entry.name))
    return found


def wait_until(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@SUPERVISORS
def test_kill_9_of_the_daemon_ends_the_whole_step(tmp_path, python):
    marker = uuid.uuid4().hex
    root = Path(__file__).resolve().parents[2]
    kind = "python" if python else "bash"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "pipeline"), marker, kind],
        cwd=root,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout.readline().strip() == "started"
        # supervisor, shell, background sleep, foreground sleep
        assert wait_until(lambda: len(marked(marker)) >= 4, 10), marked(marker)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        assert wait_until(lambda: not marked(marker), 5), [
            Path(f"/proc/{pid}/cmdline").read_bytes() for pid in marked(marker)
        ]
    finally:
        parent.kill()
        parent.wait()
        for pid in marked(marker):
            os.kill(pid, signal.SIGKILL)


@SUPERVISORS
def test_the_step_status_passes_through_the_supervisor(make_pipeline_job, python):
    from scratchd.runner.host import HostBackend

    backend = HostBackend(kill_grace=1.0, python_supervisor=python)
    backend.setup(make_pipeline_job())
    try:
        assert run_step(backend, "exit 7\n")[0] == 7
        assert run_step(backend, "kill -KILL $$\n")[0] == -signal.SIGKILL
        code, lines = run_step(backend, "#!/does/not/exist\n")
        assert code == 127 and lines.of("stderr")
        # a Python step sees a default SIGPIPE, as under a shell: `yes | head` ends
        code, lines = run_step(backend, "yes | head -n 2\n", command_timeout=10)
        assert (code, lines.of("stdout")) == (0, ["y", "y"])
    finally:
        backend.teardown()


@SUPERVISORS
def test_a_step_starts_with_default_signals_and_no_supervisor_leftovers(
    make_pipeline_job, tmp_path, python
):
    """SIGINT and SIGQUIT are not ignored (bash ignores them in a background
    child), the step's BASH_ENV is for the step's shell only, and SIGTERM to
    the group while the daemon lives ends the step, not the supervisor first."""
    from scratchd.runner.host import HostBackend

    sourced = tmp_path / "sourced"
    rc = tmp_path / "rc"
    rc.write_text(f"echo x >> {sourced}\n")
    backend = HostBackend(kill_grace=1.0, python_supervisor=python)
    backend.setup(make_pipeline_job(env={"BASH_ENV": str(rc)}))
    try:
        code, lines = run_step(backend, "grep -E '^SigIgn' /proc/self/status\n")
        assert code == 0
        ignored = int(lines.of("stdout")[0].split()[1], 16)
        assert ignored & (1 << (signal.SIGINT - 1) | 1 << (signal.SIGQUIT - 1)) == 0
        assert sourced.read_text() == "x\n"  # the step's shell only, not the supervisor
        # SIGTERM to the whole group while the daemon lives (what a timeout sends):
        # the supervisor stays, and the step's death by that signal is passed on.
        code, lines = run_step(backend, "echo up\nkill -TERM 0\nsleep 30\n")
        assert (code, lines.of("stdout")) == (-signal.SIGTERM, ["up"])
    finally:
        backend.teardown()


def test_a_setpriv_the_host_refuses_leaves_steps_to_the_python_supervisor(
    tmp_path, monkeypatch, make_pipeline_job
):
    """A system-call filter (the shipped unit's ``~@privileged``) makes setpriv fail at
    every start; the steps must still run, under the Python supervisor."""
    from scratchd.runner import reaper
    from scratchd.runner.host import HostBackend

    fake = tmp_path / "bin" / "setpriv"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'setpriv: activate capabilities: denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    argv = reaper.command(["true"], os.getpid(), nice=3, idle=True)
    assert argv[:3] == [sys.executable, "-I", "-S"]
    backend = HostBackend(nice=3, idle=True)
    backend.setup(make_pipeline_job())
    try:
        code, lines = run_step(backend, "echo ran")
    finally:
        backend.teardown()
    assert (code, lines.of("stdout")[-1:]) == (0, ["ran"]), lines.of("stderr")
