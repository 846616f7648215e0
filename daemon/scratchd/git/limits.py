"""inotify's per-user limits, checked before they bite, named so an operator can raise them.

With 1,000 repositories the watcher needs one inotify instance (watchdog
shares one across all watches) and a handful of watches per repository: the
git dir, ``refs/`` and each directory below it (``heads``, ``tags``,
``remotes/origin`` ...). Debian's defaults (``max_user_instances`` 128,
``max_user_watches`` 8192 on small machines, more on large ones) cover that,
but the limits are per *user* and shared with every other process of that
user (editors, IDEs, other daemons). When they run out, inotify fails with
``ENOSPC``/``EMFILE``, which Python reports as "No space left on device":
true to the kernel, useless to a person. These messages name the sysctl.

The limits are read under ``/proc/sys`` (an injectable directory, so tests
can present any limit without touching the machine's): the classic
``fs/inotify/max_user_*`` sysctls and, since Linux 5.11, the per-user-namespace
``user/max_inotify_*`` ones (a container may be given less); the lower wins.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

PROC_DIR = Path("/proc/sys")
#: Watches one repository typically takes: git dir, refs/, heads, tags, remotes/*, notes.
WATCHES_PER_REPO = 6


@dataclass(frozen=True)
class InotifyLimits:
    """The two per-user limits that matter; ``None`` when the kernel does not say."""

    max_user_instances: int | None
    max_user_watches: int | None

    @classmethod
    def read(cls, proc_sys: Path = PROC_DIR) -> InotifyLimits:
        """The effective limits: the lower of the global sysctl and the namespace's."""
        return cls(
            _lowest(
                proc_sys / "fs/inotify/max_user_instances", proc_sys / "user/max_inotify_instances"
            ),
            _lowest(
                proc_sys / "fs/inotify/max_user_watches", proc_sys / "user/max_inotify_watches"
            ),
        )


def _lowest(*paths: Path) -> int | None:
    found = []
    for path in paths:
        try:
            found.append(int(path.read_text().strip()))
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def advice(setting: str, wanted: int) -> str:
    """How to raise one limit, now and across reboots."""
    return (
        f"raise it with `sysctl fs.inotify.{setting}={wanted}` and keep it in "
        f"/etc/sysctl.d/60-scratchd.conf"
    )


def too_low(repos: int, limits: InotifyLimits, poll: str) -> dict[str, str]:
    """``{sysctl: message}`` for each limit too low to watch ``repos`` repositories."""
    problems = {}
    needed = repos * WATCHES_PER_REPO
    if limits.max_user_watches is not None and needed > limits.max_user_watches:
        wanted = max(needed * 2, 8192)
        problems["max_user_watches"] = (
            f"inotify: {repos} repositories need about {needed} watches but "
            f"fs.inotify.max_user_watches is {limits.max_user_watches}; "
            f"{advice('max_user_watches', wanted)}. "
            f"Until then repositories beyond the limit are found only by the poll every {poll}"
        )
    if limits.max_user_instances is not None and limits.max_user_instances < 1:
        problems["max_user_instances"] = (
            f"inotify: fs.inotify.max_user_instances is {limits.max_user_instances}; "
            f"{advice('max_user_instances', 128)}. Until then new commits are found only by "
            f"the poll every {poll}"
        )
    return problems


def explain(exc: OSError, repos: int, limits: InotifyLimits) -> tuple[str, str] | None:
    """``(sysctl, message)`` behind an inotify failure.

    ``ENOSPC`` means the watches ran out, ``EMFILE`` the instances.
    """
    if exc.errno == errno.ENOSPC:
        current = limits.max_user_watches
        wanted = max(repos * WATCHES_PER_REPO * 2, 2 * (current or 4096))
        return "max_user_watches", (
            f"inotify watch limit reached (fs.inotify.max_user_watches = {current}, shared by "
            f"every process of this user); {advice('max_user_watches', wanted)}"
        )
    if exc.errno == errno.EMFILE:
        current = limits.max_user_instances
        return "max_user_instances", (
            f"inotify instance limit reached (fs.inotify.max_user_instances = {current}, shared "
            f"by every process of this user); {advice('max_user_instances', 2 * (current or 128))}"
        )
    return None
