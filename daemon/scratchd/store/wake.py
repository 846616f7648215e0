"""A doorbell for the daemon: ``scratchd trigger``/``cancel`` wake it through a FIFO.

The daemon used to poll SQLite's ``data_version`` five times a second to
notice rows other processes wrote: cheap, but a timer that never sleeps
(idle CPU, and latency tied to the tick). Instead the daemon keeps
``<state_dir>/wake.fifo`` open and blocks reading it; a command that just
committed writes one byte. The byte carries no meaning (the database is the
truth), so a lost byte costs only latency: the daemon still looks at
``data_version`` at its slow safety-net pace.

A FIFO rather than a socket: no path-length limit, no server code, and a
writer with nobody listening gets ``ENXIO`` at once instead of blocking.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

FIFO_NAME = "wake.fifo"


def ring(state_root: Path) -> bool:
    """Wake the daemon of ``state_root`` if one listens; returns whether a byte went out."""
    try:
        fd = os.open(Path(state_root) / FIFO_NAME, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # ENXIO: no daemon reading; ENOENT: never ran here
        return False
    try:
        os.write(fd, b"!")
    except OSError as exc:  # EAGAIN: the pipe is full of unread bytes, it will wake anyway
        return exc.errno == errno.EAGAIN
    finally:
        os.close(fd)
    return True


class Doorbell:
    """The daemon's end: a thread that calls ``on_ring`` whenever a byte arrives."""

    def __init__(self, state_root: Path, on_ring: Callable[[], None]) -> None:
        self.path = Path(state_root) / FIFO_NAME
        self._on_ring = on_ring
        self._fd: int | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="scratchd-doorbell", daemon=True)

    def start(self) -> bool:
        """Create (or reuse) the FIFO and listen; ``False`` when it cannot be made."""
        try:
            with contextlib.suppress(FileNotFoundError):
                if not stat.S_ISFIFO(os.lstat(self.path).st_mode):
                    self.path.unlink()
            if not self.path.exists():
                os.mkfifo(self.path, 0o620)
            # O_RDWR: we count as a writer too, so read() never sees EOF between rings.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            log.warning("no wake-up FIFO (%s); commands are noticed at the poll pace", exc)
            return False
        self._thread.start()
        return True

    def stop(self) -> None:
        if self._fd is None:
            return
        self._closing = True
        with contextlib.suppress(OSError):
            os.write(self._fd, b"x")  # unblock our own read()
        self._thread.join(5)
        os.close(self._fd)
        self._fd = None

    def _run(self) -> None:
        assert self._fd is not None
        while not self._closing:
            try:
                data = os.read(self._fd, 4096)  # many rings while busy: one wake
            except OSError as exc:
                log.error("wake-up FIFO failed: %s", exc)
                return
            if data and not self._closing:
                self._on_ring()
