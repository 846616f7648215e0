"""Per-build log files: written line by line while running, gzip-compressed when done.

Path scheme (see :class:`~scratchd.store.records.StateDir`):
``<state_dir>/logs/<repo>/<id>.log`` while a build runs, ``<id>.log.gz`` once
it finished. Each line is ``<UTC timestamp> <stream> <pipeline>/<step>: <text>``. Compression
writes the ``.gz`` next to the log, renames it into place, then unlinks the
plain file: a reader that already has the plain file open keeps reading it to
the end, and a new reader finds one of the two at every moment.
"""

from __future__ import annotations

import gzip
import os
import shutil
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from scratchd.redact import Masker


def gz_path(path: Path) -> Path:
    return path.with_name(path.name + ".gz")


class OutputLike(Protocol):
    """An output line as the runner emits it (duck-typed: the store does not import runner)."""

    @property
    def text(self) -> str: ...
    @property
    def stream(self) -> str: ...
    @property
    def pipeline(self) -> str: ...
    @property
    def step(self) -> str: ...
    @property
    def timestamp(self) -> float | None: ...


class BuildLog:
    """Appends timestamped lines to one build's log; each line is flushed at once.

    ``masker`` (the build's :class:`~scratchd.redact.Masker`) masks every line
    written, scratchd's own included ("checking out", the outcome), so no
    caller has to remember to redact before writing.

    A log that cannot be written (the disk is full) must not take the build's
    worker down with it: a failed write drops the line, ``on_error`` hears of
    the first failure, and :attr:`write_error` keeps it for the outcome.
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], float] = time.time,
        *,
        masker: Masker | None = None,
        on_error: Callable[[OSError], None] = lambda exc: None,
    ) -> None:
        self.path = Path(path)
        self._masker = masker
        self._on_error = on_error
        self.write_error: OSError | None = None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._file = open(self.path, "a", encoding="utf-8", errors="replace")  # noqa: SIM115

    def line(
        self,
        text: str,
        stream: str = "stdout",
        *,
        pipeline: str = "",
        step: str = "",
        timestamp: float | None = None,
    ) -> None:
        """Append ``<UTC time> <stream> [<pipeline>/<step>: ]<text>``, secrets masked."""
        if self._masker is not None:
            text = self._masker.redact(text)
        when = self._clock() if timestamp is None else timestamp
        stamp = datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        where = f"{pipeline}/{step}: " if pipeline or step else ""
        try:
            self._file.write(f"{stamp}Z {stream} {where}{text.rstrip(chr(10))}\n")
            self._file.flush()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        if self.write_error is None:
            self.write_error = exc
            self._on_error(exc)

    def __call__(self, output: OutputLike) -> None:
        """A line consumer for the runner's output lines (``OutputLine``-shaped objects)."""
        self.line(
            output.text,
            output.stream,
            pipeline=output.pipeline,
            step=output.step,
            timestamp=output.timestamp,
        )

    def close(self) -> None:
        if not self._file.closed:
            try:
                self._file.close()
            except OSError as exc:  # the last buffered bytes found no space
                self._failed(exc)

    def finish(self) -> Path:
        """Close and compress; returns the ``.gz`` path (the plain one if there is no room)."""
        self.close()
        try:
            return compress_log(self.path)
        except OSError as exc:
            self._failed(exc)
            gz_path(self.path).with_name(gz_path(self.path).name + ".tmp").unlink(missing_ok=True)
            return self.path

    def __enter__(self) -> BuildLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def compress_log(path: Path) -> Path:
    """Gzip ``path`` to ``path.gz`` atomically and remove the plain file."""
    target = gz_path(path)
    if not path.exists():
        return target
    tmp = target.with_name(target.name + ".tmp")
    with open(path, "rb") as src, gzip.open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    path.unlink()
    return target


def read_log(path: Path) -> str | None:
    """The whole log, plain or compressed; ``None`` when there is none (yet)."""
    for _ in range(3):  # the plain file may be compressed away between the checks
        try:
            return path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            pass
        try:
            with gzip.open(gz_path(path), "rt", encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            pass
    return None


def follow_log(
    path: Path,
    done: Callable[[], bool],
    *,
    poll: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[str]:
    """Yield the log's text as it grows until ``done()`` says the build ended.

    ``done`` is asked only when no new text is available, and once it is true
    the rest of the file is read, so no line written before the end is lost.
    """
    while True:
        try:
            f = open(path, encoding="utf-8", errors="replace")  # noqa: SIM115
            break
        except FileNotFoundError:
            finished = done()
            text = read_log(path)
            if text is not None and (finished or not path.exists()):
                yield text
                return
            if finished:
                return
            sleep(poll)
    with f:
        while True:
            chunk = f.read()
            if chunk:
                yield chunk
                continue
            if done():
                rest = f.read()
                if rest:
                    yield rest
                return
            sleep(poll)
