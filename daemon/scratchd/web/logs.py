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
import os
import threading
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


class LineCounts:
    """What earlier looks at a log learnt, so the next one reads only what is new.

    A running build's log only grows: its newlines are counted once, and a
    later look counts from where the last one stopped (a 20 MB log is tens of
    milliseconds to count, which a page shown again and again should not pay
    each time). A finished log is gzip and never changes: its tail is kept
    whole. Entries are keyed by path and inode and checked against the bytes
    before the counted offset, so a file replaced underneath is counted anew.
    Bounded: the oldest entries go.
    """

    GUARD = 64  # bytes before the counted offset that must still be there

    def __init__(self, limit: int = 64) -> None:
        self._limit = limit
        self._plain: collections.OrderedDict[tuple, tuple[int, int, bytes]] = (
            collections.OrderedDict()
        )
        self._gzip: collections.OrderedDict[tuple, LogSlice] = collections.OrderedDict()
        self._lock = threading.Lock()

    def count(self, f, end: int) -> tuple[int, int]:
        """(newlines in ``f`` up to ``end``, the offset counted to) for a plain log."""
        key = (f.name, *_identity(f))
        with self._lock:
            offset, lines, guard = self._plain.get(key, (0, 0, b""))
        if offset > end or os.pread(f.fileno(), len(guard), offset - len(guard)) != guard:
            offset, lines = 0, 0
        f.seek(offset)
        while offset < end and (chunk := f.read(min(1 << 20, end - offset))):
            lines += chunk.count(b"\n")
            offset += len(chunk)
        guard = os.pread(f.fileno(), min(self.GUARD, offset), offset - min(self.GUARD, offset))
        self._put(self._plain, key, (offset, lines, guard))
        return lines, offset

    def gzip_tail(self, f: gzip.GzipFile, count: int) -> LogSlice:
        """The tail of a finished (gzip) log: read once, since it never changes."""
        st = os.fstat(f.fileno())  # the compressed file's
        key = (f.name, count, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            found = self._gzip.get(key)
        if found is None:
            found = _tail_stream(f, count)
            self._put(self._gzip, key, found)
        return found

    def _put(self, table: collections.OrderedDict, key: tuple, value) -> None:
        with self._lock:
            table[key] = value
            table.move_to_end(key)
            while len(table) > self._limit:
                table.popitem(last=False)


def _identity(f) -> tuple[int, int]:
    st = os.fstat(f.fileno())
    return st.st_dev, st.st_ino


def tail(path: Path, count: int, counts: LineCounts | None = None) -> LogSlice | None:
    """The last ``count`` complete lines and the total number of lines.

    With ``counts`` (one per web process) a log looked at before is not read
    whole again; without, every call reads it all.
    """
    counts = counts or LineCounts()
    f = open_log(path)
    if f is None:
        return None
    with f:
        if isinstance(f, gzip.GzipFile):
            return counts.gzip_tail(f, count)
        return _tail_plain(f, count, counts)


def _tail_plain(f, count: int, counts: LineCounts) -> LogSlice:
    end = f.seek(0, io.SEEK_END)
    total, end = counts.count(f, end)
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
