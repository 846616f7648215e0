"""Where step output goes: every line tagged with pipeline, step, stream and time.

The executor owns one :class:`BuildOutput` per build. It masks the build's
secrets (``--secrets-file`` values, ``password`` options, registry
passwords) in every line *before* any consumer sees it, so the journal, log
files, the state database and the terminal all get the same redacted text
without each of them knowing which values are secret.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from scratchd.redact import Redactor

#: Streams a line may come from: the step's own output, or scratchd's messages.
STDOUT, STDERR, INFO = "stdout", "stderr", "info"


@dataclass(frozen=True)
class OutputLine:
    """One line of build output, already redacted."""

    build_id: str
    pipeline: str
    step: str
    stream: str  # "stdout", "stderr" or "info" (headers, results from scratchd)
    text: str
    timestamp: float  # seconds since the epoch


#: A consumer of output lines (the daemon routes them to journald and log files).
LineConsumer = Callable[[OutputLine], None]


class BuildOutput:
    """The redacting, collecting sink of one build.

    Keeps at most ``keep`` lines in memory (the newest) for the build result;
    consumers get every line. Thread-safe: backends may call from reader
    threads.
    """

    def __init__(
        self,
        build_id: str,
        redactor: Redactor,
        consumers: Iterable[LineConsumer] = (),
        *,
        keep: int = 20_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.build_id = build_id
        self.redactor = redactor
        self._consumers = tuple(consumers)
        self._keep = keep
        self._clock = clock
        self._lines: list[OutputLine] = []
        self._dropped = 0
        self._lock = threading.Lock()

    def add_secrets(self, *values: str) -> None:
        """Mask these values from now on (``password`` options found at run time)."""
        self.redactor.add(*values)

    def redact(self, text: str) -> str:
        return self.redactor.redact(text)

    def emit(self, pipeline: str, step: str, stream: str, text: str) -> OutputLine:
        line = OutputLine(self.build_id, pipeline, step, stream, self.redact(text), self._clock())
        with self._lock:
            self._lines.append(line)
            if len(self._lines) > self._keep:
                overflow = len(self._lines) - self._keep
                del self._lines[:overflow]
                self._dropped += overflow
        for consumer in self._consumers:
            consumer(line)
        return line

    def for_step(self, pipeline: str, step: str) -> Callable[[str, str], None]:
        """An ``on_line(stream, text)`` callback for :meth:`Backend.run`."""

        def on_line(stream: str, text: str) -> None:
            self.emit(pipeline, step, stream, text)

        return on_line

    @property
    def lines(self) -> tuple[OutputLine, ...]:
        with self._lock:
            return tuple(self._lines)

    @property
    def dropped(self) -> int:
        """How many old lines were let go to bound memory."""
        return self._dropped

    def text(self) -> str:
        """All kept lines as one text (the build log the result carries)."""
        return "".join(f"{line.text}\n" for line in self.lines)
