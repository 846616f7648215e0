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
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys

_PR_SET_PDEATHSIG = 1
#: Python ignores these; a step must start with the default action, as from a shell.
_RESTORED = (signal.SIGPIPE, signal.SIGXFSZ)


BASH = "/bin/bash"

#: ``$1`` is the daemon's pid, ``$2`` is ``--``, the rest is the step's argv.
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
( trap - INT QUIT; shift 2; exec "$@" ) &
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


def command(argv: list[str], parent: int, *, python: bool = False) -> list[str]:
    """The argv that runs ``argv`` under a supervisor, for daemon process ``parent``.

    The bash supervisor where the host can run it (see the module docstring),
    else this file; ``python`` asks for this file whatever the host has.
    """
    setpriv = None if python else shutil.which("setpriv")
    if setpriv is not None and os.access(BASH, os.X_OK):
        supervisor = [BASH, "--posix", "-c", SUPERVISOR, "scratchd-reaper"]
        return [setpriv, "--pdeathsig", "TERM", "--", *supervisor, str(parent), "--", *argv]
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(parent), "--", *argv]


def main(args: list[str]) -> int:
    parent, separator, *argv = args
    if separator != "--" or not argv:
        print("usage: reaper.py PARENT_PID -- ARGV...", file=sys.stderr)
        return 2
    parent_pid = int(parent)
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
