"""A host step's supervisor: the step's whole process group dies with the daemon.

``python -I -S reaper.py PARENT_PID [--nice N] [--idle] -- ARGV...``, or
the same job in bash (:data:`SUPERVISOR`, see below), is what the host backend
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

Two supervisors do this job the same way. Where the host has ``setpriv``
(util-linux) and ``/bin/bash``, the supervisor is :data:`SUPERVISOR`, a few
lines of bash that ``setpriv --pdeathsig TERM`` starts (the signal survives
the exec): about 2 ms to start, where a Python interpreter takes 20 to 50 ms
on a busy machine, and a step's start is on every build's path. Elsewhere
it is this file, run with ``python -I -S`` (standard library only, so the
step's ``PYTHON*`` variables, which it gets, cannot change how it runs).

The bash supervisor runs in POSIX mode, so the step's ``BASH_ENV`` is not
sourced by it; it resets SIGINT and SIGQUIT (bash ignores them in a
background child) before it execs the step. One difference: bash cannot
tell ``exit 137`` from death by SIGKILL, and passes both on as SIGKILL.

Both also lower the step's CPU priority (``nice``, ``idle``) before starting
it, never in a ``preexec_fn`` (unsafe in the threaded daemon). Nice alone
did nothing against the daemon: each step is a new session, and with the
kernel's autogroups (the default on desktop and many server kernels, for
processes outside a systemd service's cgroup) a session's processes share
one CPU weight whatever their nice, so a busy step weighed as much as the
whole daemon. So the session's autogroup gets the nice too, and ``idle``
puts the step under ``SCHED_IDLE``: a task of any other policy waking up
preempts it at once. Children inherit all three. The bash supervisor is
started through ``nice(1)``, writes the autogroup itself and asks
``chrt(1)`` for the policy; this file does all three in Python.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import shutil
import signal
import sys

_PR_SET_PDEATHSIG = 1
#: Python ignores these; a step must start with the default action, as from a shell.
_RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)
_AUTOGROUP = "/proc/self/autogroup"  # this session's CPU weight (see the docstring)


BASH = "/bin/bash"

#: ``$1`` is the daemon's pid, ``$2`` the autogroup nice (0: leave it), ``$3``
#: the path of ``chrt`` to go ``SCHED_IDLE`` with (empty: stay), ``$4`` is
#: ``--``, the rest is the step's argv. Both fail quietly, as in this file: a
#: kernel without autogroups or a filter refusing the policy leaves the step
#: at the priority it could get.
#: The trap comes first: a parent-death signal before it would kill bash and
#: orphan nothing (the step is not started yet); one after it finds the step
#: in the group. ``/proc/$$/stat`` gives the parent now (``$PPID`` is the one
#: at start); its second field is ``(bash)``, without spaces. A ``wait`` cut
#: short by the trap is waited again only while the step lives: bash 5.2 may
#: have reaped it in that moment and answers -1 to a second ``wait``.
SUPERVISOR = """\
trap 'scratchd_woken=1; scratchd_gone' TERM
scratchd_gone() {
  read -r _ _ _ scratchd_ppid _ < /proc/$$/stat
  [ "$scratchd_ppid" = "$scratchd_parent" ] || kill -KILL 0
}
scratchd_parent=$1
if [ "$2" != 0 ]; then { echo "$2" > /proc/self/autogroup; } 2>/dev/null; fi
if [ -n "$3" ]; then "$3" --idle -p 0 $$ > /dev/null 2>&1; fi
( trap - INT QUIT; shift 4; exec "$@" ) &
scratchd_step=$!
scratchd_gone
while :; do
  scratchd_woken=
  wait "$scratchd_step"
  scratchd_status=$?
  [ -n "$scratchd_woken" ] && kill -0 "$scratchd_step" 2>/dev/null || break
done
if [ "$scratchd_status" -gt 128 ]; then
  ulimit -c 0
  trap - TERM
  kill -"$((scratchd_status - 128))" $$ 2>/dev/null
fi
exit "$scratchd_status"
"""


def command(
    argv: list[str], parent: int, *, nice: int = 0, idle: bool = False, python: bool = False
) -> list[str]:
    """The argv that runs ``argv`` under a supervisor, for daemon process ``parent``.

    ``nice`` (0-19) and ``idle`` (``SCHED_IDLE``) lower the step's CPU
    priority. The bash supervisor where the host has what it needs (see the
    module docstring), else this file; ``python`` asks for this file
    whatever the host has.
    """
    nicer = shutil.which("nice") if nice > 0 else ""
    chrt = shutil.which("chrt") if idle else ""
    setpriv = None if python else shutil.which("setpriv")
    if (
        setpriv is not None
        and nicer is not None
        and chrt is not None
        and os.access(BASH, os.X_OK)
        and setpriv_works(setpriv)
    ):
        prefix = [nicer, "-n", str(nice)] if nicer else []
        supervisor = [BASH, "--posix", "-c", SUPERVISOR, "scratchd-reaper"]
        head = [*prefix, setpriv, "--pdeathsig", "TERM", "--", *supervisor]
        return [*head, str(parent), str(max(nice, 0)), chrt, "--", *argv]
    options = [*(["--nice", str(nice)] if nice > 0 else []), *(["--idle"] if idle else [])]
    me = os.path.abspath(__file__)
    return [sys.executable, "-I", "-S", me, str(parent), *options, "--", *argv]


@functools.cache
def setpriv_works(setpriv: str) -> bool:
    """Whether ``setpriv --pdeathsig`` can run from this process, asked once.

    setpriv applies capabilities even when asked only for the signal, and a
    system-call filter denying ``@privileged`` without allowing ``capset``
    back (the shipped unit allows it) refuses that (``setpriv: activate
    capabilities``): every step would fail at its start. Children inherit the
    daemon's filter, so one try tells.
    """
    import subprocess  # here: the Python supervisor below starts without it

    try:
        done = subprocess.run(
            [setpriv, "--pdeathsig", "TERM", "--", BASH, "-c", ":"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


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
        with contextlib.suppress(OSError):  # a filter refusing setpriority: best effort
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
