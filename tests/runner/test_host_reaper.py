"""Host steps die with the daemon: a ``kill -9`` of it leaves no process of a step behind.

The parent here is a small daemon-like Python process: it runs a step with
:class:`HostBackend` from a worker thread, as the daemon does, and prints
the step's output. The step starts a background and a foreground
``sleep 300``; every process of it carries a marker in its environment, so
``/proc`` tells whether any survived the parent.
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

from tests.runner.conftest import run_step

PARENT = textwrap.dedent(
    """
    import sys, threading
    from pathlib import Path
    from scratchd.runner.backend import StepCommand
    from scratchd.runner.host import HostBackend
    from tests.runner.conftest import pipeline_job

    marker = sys.argv[2]
    backend = HostBackend()
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


def test_kill_9_of_the_daemon_ends_the_whole_step(tmp_path):
    marker = uuid.uuid4().hex
    root = Path(__file__).resolve().parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "pipeline"), marker],
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


def test_the_step_status_passes_through_the_supervisor(make_pipeline_job):
    from scratchd.runner.host import HostBackend

    backend = HostBackend(kill_grace=1.0)
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
