"""The daemon under faults it cannot fix itself: a full disk, a state database it cannot write.

Such a fault lasts: every heartbeat and every build hits it again until an
operator frees space. Logging each hit would flood the journal with the
same line every two seconds and bury the one that says what is wrong, so
a :class:`Condition` logs once when a fault starts and once when it is
over. :func:`low_on_space` is how the daemon tells "a step failed" from
"the disk is full" (an infrastructure error, retried) and when to stop
starting builds that could only fail the same way.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

#: Below this many free bytes the state directory's file system counts as full:
#: no new build starts, and a build that fails meanwhile failed for want of space.
MIN_FREE_BYTES = 1024 * 1024


def free_bytes(path: Path) -> int | None:
    """Bytes an unprivileged writer may still use under ``path`` (None: unknown)."""
    for candidate in (Path(path), *Path(path).parents):
        try:
            st = os.statvfs(candidate)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def low_on_space(path: Path, minimum: int = MIN_FREE_BYTES) -> bool:
    """Whether the file system holding ``path`` has less than ``minimum`` bytes free."""
    free = free_bytes(path)
    return free is not None and free < minimum


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) is "no space left" or a full SQLite database."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "disk is full" in str(seen) or "No space left" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Condition:
    """A fault that is logged when it begins and when it ends, never in between.

    Thread-safe: workers and the main loop report the same condition.
    """

    def __init__(self, logger: logging.Logger, what: str, over: str = "") -> None:
        self._log, self._what = logger, what
        self._over = over or f"{what}: no longer"
        self._lock = threading.Lock()
        self.active = False

    def failed(self, reason: object, **extra: object) -> bool:
        """Report the fault; logs (and returns True) only if it was not active yet."""
        with self._lock:
            if self.active:
                return False
            self.active = True
        self._log.error("%s: %s", self._what, reason, extra=extra or None)
        return True

    def cleared(self) -> bool:
        """Report that it works again; logs (and returns True) only after a fault."""
        with self._lock:
            if not self.active:
                return False
            self.active = False
        self._log.warning("%s", self._over)
        return True


class Reserve:
    """A file of :data:`MIN_FREE_BYTES` kept in the state directory, given up on a full disk.

    When a step fills the disk, SQLite cannot write the outcome that would
    free the build's slot and queue its retry. Deleting the reserve makes
    room for exactly that; it is written again once space is back.
    """

    def __init__(self, path: Path, size: int = MIN_FREE_BYTES) -> None:
        self.path, self.size = Path(path), size

    def release(self) -> bool:
        """Give the space back; True if there was a reserve to give."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            return False
        return True

    def ensure(self) -> bool:
        """Write the reserve if it is missing and the disk can spare it twice over."""
        if self.path.exists():
            return True
        free = free_bytes(self.path.parent)
        if free is None or free < 2 * self.size + MIN_FREE_BYTES:
            return False
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(bytes(self.size))  # real blocks: a sparse file would reserve nothing
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)
            return False
        return True
