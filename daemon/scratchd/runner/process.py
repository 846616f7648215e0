"""Process-group helpers for the host backend (Linux).

Every host step runs as the leader of its own session and process group,
so "the step" means "every process in that group": a ``make -j`` and all
its compilers, or a ``sleep 1000 &`` the script forgot. Killing a step
therefore signals the group, and "is it gone?" is answered by scanning
``/proc`` rather than by ``kill(-pgid, 0)``, because zombies count for the
latter and an init that does not reap (common in containers and VMs) would
make a dead group look alive until the grace period runs out.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

_PROC = Path("/proc")


def group_members(pgid: int) -> list[int]:
    """Pids of live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # exited while we looked
            continue
        # Fields after the parenthesised command: state ppid pgrp ...
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in "ZX":
            members.append(int(entry.name))
    return members


def signal_group(pgid: int, sig: int) -> bool:
    """Send ``sig`` to the group; False when no process was left to receive it."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


def terminate_group(pgid: int, grace: float, poll: float = 0.05) -> None:
    """SIGTERM the group, then SIGKILL whatever is still alive after ``grace`` seconds.

    Returns once no live member is left (or, should a process be stuck in
    uninterruptible sleep, after a bounded wait following SIGKILL).
    """
    if not signal_group(pgid, signal.SIGTERM) or _wait_empty(pgid, grace, poll):
        return
    signal_group(pgid, signal.SIGKILL)
    _wait_empty(pgid, max(grace, 1.0), poll)


def _wait_empty(pgid: int, timeout: float, poll: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
