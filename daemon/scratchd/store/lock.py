"""One daemon per state directory.

Recovery marks every ``running`` build as interrupted, which is only true if
no other daemon is running them, so the daemon holds an exclusive ``flock``
on ``<state_dir>/daemon.lock`` for its whole life. The kernel drops the lock
when the process dies, even by ``kill -9``: no stale lock files to clean up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from scratchd.errors import StoreError

if TYPE_CHECKING:
    from scratchd.store.records import DaemonInfo


#: Seconds ``acquire`` keeps asking before it gives up: ``holder()`` (``scratchd
#: status``, the web page, a metrics scrape) holds a shared lock for an instant, and a
#: daemon starting in that instant must not take it for another daemon.
ACQUIRE_PATIENCE = 1.0


class DaemonLock:
    """Exclusive lock of a state directory; the holder's pid is written into the file."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / "daemon.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`StoreError` naming the pid that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + ACQUIRE_PATIENCE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.02)  # perhaps a reader's brief shared lock: ask again
                    continue
            holder = _read_pid(fd)
            os.close(fd)
            raise StoreError(
                f"another scratchd daemon (pid {holder or '?'}) is using {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def holder(self) -> int | None:
        """Pid of the daemon holding the lock, ``None`` when nobody does."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or -1
        finally:
            os.close(fd)
        return None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def daemon_alive(info: DaemonInfo | None, holder: int | None) -> bool:
    """Whether a daemon runs: the lock is held and no clean stop was recorded since.

    ``holder`` is :meth:`DaemonLock.holder` (-1 when the pid is unknown). The
    status row is written only when the daemon's state changes, so how old it
    is says nothing about liveness; the lock does, and costs nothing.
    """
    if holder is None:
        return False
    return info is None or info.status != "stopped" or info.pid != holder


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
