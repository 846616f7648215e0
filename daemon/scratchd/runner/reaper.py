"""A host step's supervisor: the step's whole process group dies with the daemon.

``python -I -S reaper.py PARENT_PID -- ARGV...`` is what the host backend
starts for each step, as the leader of a new session. It asks the kernel
for a parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGTERM)``), starts
``ARGV`` (the step's shell) as its child in the same process group, waits
for it and exits with the same status, so for the backend it *is* the step.

Why a supervisor and not ``setpriv --pdeathsig KILL -- sh step``: the
parent-death signal reaches only the direct child. The shell would die, but
``sleep 300 &`` and everything else the step started would be reparented and
keep running. The supervisor stays the parent, catches the signal, and
SIGKILLs its own process group: the shell, its background jobs and itself.
Without the daemon nobody reads the output or records the result any more,
so there is no point in a grace period; the build is marked as interrupted
when the daemon comes back.

One signal serves two senders. The backend also SIGTERMs the group when a
step times out or is cancelled: then the parent is still alive and the
supervisor only keeps waiting for the shell, whose exit (or death by the
signal) it passes on. When the daemon died, ``getppid()`` no longer names
it (the kernel reparents before it signals), and the group is killed.

Caveat (documented in :mod:`scratchd.runner.host` too): Linux sends the
parent-death signal when the *thread* that forked the child exits, not the
process. The backend's worker thread starts the supervisor and waits for it
in the same call, so the thread always outlives the step.

The script uses only the standard library and runs with ``-I -S``, so it
starts in a few milliseconds and the step's ``PYTHON*`` variables (it gets
the step's environment) cannot change how it runs.

It also lowers the step's CPU priority (``--nice N``, ``--idle``) before
starting it, in this process rather than a ``preexec_fn`` (unsafe in the
threaded daemon) or ``nice(1)``. Nice alone did nothing against the daemon:
each step is a new session, and with the kernel's autogroups (the default
on desktop and many server kernels, for processes outside a systemd
service's cgroup) a session's processes share one CPU weight whatever
their nice, so a busy step weighed as much as the whole daemon. So the
session's autogroup gets the nice too, and ``--idle`` puts the step under
``SCHED_IDLE``: a task of any other policy waking up preempts it at once.
Children inherit all three.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1
#: Python ignores these; a step must start with the default action, as from a shell.
_RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)
_AUTOGROUP = "/proc/self/autogroup"  # this session's CPU weight (see the docstring)


def command(argv: list[str], parent: int, *, nice: int = 0, idle: bool = False) -> list[str]:
    """The argv that runs ``argv`` under this supervisor, for daemon process ``parent``.

    ``nice`` (0-19) and ``idle`` (``SCHED_IDLE``) lower the step's CPU priority.
    """
    options = [*(["--nice", str(nice)] if nice > 0 else []), *(["--idle"] if idle else [])]
    me = os.path.abspath(__file__)
    return [sys.executable, "-I", "-S", me, str(parent), *options, "--", *argv]


def main(args: list[str]) -> int:
    parsed = _parse(args)
    if parsed is None:
        print("usage: reaper.py PARENT_PID [--nice N] [--idle] -- ARGV...", file=sys.stderr)
        return 2
    parent_pid, nice, idle, argv = parsed
    lower_priority(nice, idle)
    signal.signal(signal.SIGTERM, lambda *_: _parent_gone(parent_pid))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        print(f"prctl: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 126
    _parent_gone(parent_pid)  # died before the prctl: no signal will come
    try:
        child = os.posix_spawnp(argv[0], argv, os.environ, setsigdef=_RESTORED)
    except OSError as exc:
        print(f"{argv[0]}: {exc.strerror}", file=sys.stderr)
        return 127
    _, status = os.waitpid(child, 0)
    return _pass_on(status)


def _parse(args: list[str]) -> tuple[int, int, bool, list[str]] | None:
    """(parent pid, nice, idle, argv) from ``PARENT_PID [--nice N] [--idle] -- ARGV...``."""
    if "--" not in args or len(args) < 3:
        return None
    cut = args.index("--")
    options, argv = args[1:cut], args[cut + 1 :]
    nice, idle = 0, "--idle" in options
    if "--nice" in options:
        at = options.index("--nice") + 1
        nice = int(options[at]) if at < len(options) and options[at].isdigit() else -1
    if not argv or not args[0].isdigit() or nice < 0:
        return None
    return int(args[0]), nice, idle, argv


def lower_priority(nice: int, idle: bool) -> None:
    """Nice this process and its session's autogroup by ``nice``; ``SCHED_IDLE`` if ``idle``.

    Each is best effort: a kernel without autogroups, or a seccomp filter
    refusing the call, leaves the step at the priority it could get.
    """
    if nice > 0:
        os.nice(nice)
        # No autogroups (CONFIG_SCHED_AUTOGROUP off): the nice alone applies.
        with contextlib.suppress(OSError), open(_AUTOGROUP, "w") as f:
            f.write(str(nice))  # a new session has its own autogroup
    if idle:
        with contextlib.suppress(OSError):  # refused: the nice above still applies
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _parent_gone(parent_pid: int) -> None:
    """SIGKILL the whole group (this process included) when the daemon is gone."""
    if os.getppid() != parent_pid:
        os.killpg(0, signal.SIGKILL)


def _pass_on(status: int) -> int:
    """Exit as the step did: same code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the step dumped, if anyone
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # those have no handler to reset
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig  # not reached for a fatal signal
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
