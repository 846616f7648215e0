"""Reading build logs by line number: the tail first, any range on demand, and following.

A page that loads a 20 MB log whole freezes the browser tab, so the page gets
the last ~2,000 lines and asks for earlier ranges when the reader wants them.
A running build's log is a plain file read backwards from its end; a finished
one is gzip, which cannot be read backwards, so it is streamed once keeping
only the lines wanted. Line numbers are 1-based and count ``\\n``-terminated
lines, which is what makes them stable resume points for the log's SSE
stream: the line after ``Last-Event-ID`` is the next one to send.
"""

from __future__ import annotations

import collections
import gzip
import io
from dataclasses import dataclass
from pathlib import Path

from scratchd.store.logs import gz_path

BLOCK = 1 << 16


@dataclass(frozen=True)
class LogSlice:
    """Lines ``first .. first+len(lines)-1`` of a log that has ``total`` lines."""

    first: int
    lines: list[str]
    total: int


def open_log(path: Path) -> io.BufferedIOBase | None:
    """The plain log if it still exists, else the gzip one; ``None`` when there is none."""
    for _ in range(3):  # compression may move the file between the two tries
        try:
            return open(path, "rb")  # the caller closes it
        except FileNotFoundError:
            pass
        try:
            return gzip.open(gz_path(path), "rb")
        except FileNotFoundError:
            pass
    return None


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def tail(path: Path, count: int) -> LogSlice | None:
    """The last ``count`` complete lines and the total number of lines."""
    f = open_log(path)
    if f is None:
        return None
    with f:
        if isinstance(f, gzip.GzipFile):
            return _tail_stream(f, count)
        return _tail_plain(f, count)


def _tail_plain(f, count: int) -> LogSlice:
    end = f.seek(0, io.SEEK_END)
    f.seek(0)
    total = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    end = min(end, f.tell())
    # Walk back from the last newline until ``count`` + 1 newlines are behind us.
    data, pos = b"", end
    while pos > 0 and data.count(b"\n") <= count:
        step = min(BLOCK, pos)
        pos -= step
        f.seek(pos)
        data = f.read(step) + data
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    lines = complete.split(b"\n")[:-1]
    if pos > 0:
        lines = lines[1:]  # the first one may be cut
    lines = lines[-count:] if count else []
    return LogSlice(total - len(lines) + 1, [_decode(x) for x in lines], total)


def _tail_stream(f, count: int) -> LogSlice:
    kept: collections.deque[bytes] = collections.deque(maxlen=max(count, 0) or None)
    total = 0
    for raw in f:
        if not raw.endswith(b"\n"):
            break
        total += 1
        if count:
            kept.append(raw[:-1])
    return LogSlice(total - len(kept) + 1, [_decode(x) for x in kept], total)


def line_range(path: Path, first: int, last: int) -> LogSlice | None:
    """Lines ``first..last`` (1-based, inclusive, clipped to the log)."""
    f = open_log(path)
    if f is None:
        return None
    lines: list[str] = []
    total = 0
    with f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            total += 1
            if first <= total <= last:
                lines.append(_decode(raw[:-1]))
    return LogSlice(max(1, first), lines, total)


class LogFollower:
    """Yields the lines after line ``after`` as they are written, resumable by number.

    ``poll()`` returns the complete lines that appeared since the last call.
    It keeps the plain file open, so the compression at the end (which
    unlinks it after writing the ``.gz``) never loses the last lines; if the
    log was already compressed it reads the ``.gz``, skipping ``after``
    lines either way.
    """

    def __init__(self, path: Path, after: int) -> None:
        self.path = path
        self.line = max(0, after)
        self._file: io.BufferedIOBase | None = None
        self._skip = self.line
        self._partial = b""

    def poll(self) -> list[tuple[int, str]]:
        if self._file is None:
            self._file = open_log(self.path)
            if self._file is None:
                return []
        out: list[tuple[int, str]] = []
        data = self._partial + self._file.read()
        *complete, self._partial = data.split(b"\n")
        for raw in complete:
            if self._skip:
                self._skip -= 1
                continue
            self.line += 1
            out.append((self.line, _decode(raw)))
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
