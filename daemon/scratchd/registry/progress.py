"""Human-facing push progress: a live line on a terminal, quiet lines elsewhere.

On a terminal one status line is redrawn (at most ten times a second) with
every active blob's bytes and rate, and each finished blob leaves a
permanent line. In a log file or pipe only the finished lines appear, so CI
logs stay short. ``--json`` output uses no printer at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

from scratchd.registry.upload import ProgressEvent

_REDRAW = 0.1  # seconds between status-line redraws


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


class ProgressPrinter:
    """A ``progress`` callback for :class:`RegistryClient` that writes to ``stream``."""

    def __init__(
        self, stream: TextIO, *, tty: bool, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._stream = stream
        self._tty = tty
        self._clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, tuple[float, ProgressEvent]] = {}  # digest -> (start, last)
        self._drawn = 0.0

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            if event.state == "uploading":
                self._uploading(event)
            else:
                self._finished(event)

    def _uploading(self, event: ProgressEvent) -> None:
        start = self._active.get(event.digest, (self._clock(), event))[0]
        self._active[event.digest] = (start, event)
        now = self._clock()
        if self._tty and now - self._drawn >= _REDRAW:
            self._drawn = now
            parts = [self._describe(s, e, now) for s, e in self._active.values()]
            self._stream.write("\r\x1b[K" + "  ".join(parts))
            self._stream.flush()

    def _finished(self, event: ProgressEvent) -> None:
        start, _ = self._active.pop(event.digest, (None, None))
        short = event.digest.removeprefix("sha256:")[:12]
        if event.state == "done":
            rate = ""
            if start is not None and self._clock() > start:
                rate = f", {human_bytes(event.size / (self._clock() - start))}/s"
            line = f"{short}: pushed {human_bytes(event.size)}{rate}"
        else:
            why = "already there" if event.state == "skipped" else "from another repository"
            line = f"{short}: {event.state} ({why})"
        prefix = "\r\x1b[K" if self._tty else ""
        self._stream.write(f"{prefix}{line}\n")
        self._stream.flush()

    @staticmethod
    def _describe(start: float, event: ProgressEvent, now: float) -> str:
        rate = event.done / (now - start) if now > start else 0.0
        short = event.digest.removeprefix("sha256:")[:12]
        return f"{short} {human_bytes(event.done)}/{human_bytes(event.size)} {human_bytes(rate)}/s"
