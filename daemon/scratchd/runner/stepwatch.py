"""What both backends do while a step runs: cut output into lines, watch the clock.

A step's output arrives as arbitrary byte chunks on two streams. Both
backends turn them into text lines the same way (:class:`LineSplitter`)
and enforce the same three ways a step can be stopped from outside
(:class:`StepClock`): the overall ``command_timeout``, the
``no_response_timeout`` that restarts with every line, and the build's
``cancel`` event. Keeping this here means the host and Docker backends
only differ in how they start and kill processes.
"""

from __future__ import annotations

import codecs
import threading
import time
from collections.abc import Callable

from scratchd.errors import BuildCancelled, StepTimeout

#: A line longer than this is delivered in pieces, so a step that prints a
#: megabyte without a newline cannot make the daemon hold it all.
MAX_LINE_CHARS = 64 * 1024


class LineSplitter:
    """Incremental bytes → lines for one stream.

    Invalid UTF-8 becomes U+FFFD instead of an exception (build tools print
    Latin-1 file names); a multi-byte character split across two chunks is
    still decoded whole. Lines are yielded without their ``\\n`` (and a
    trailing ``\\r``, so CRLF output looks like LF output).
    """

    def __init__(self, max_chars: int = MAX_LINE_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = ""
        self._max = max_chars

    def feed(self, data: bytes) -> list[str]:
        text = self._pending + self._decoder.decode(data)
        *lines, self._pending = text.split("\n")
        out = [piece for line in lines for piece in self._cut(line.removesuffix("\r"))]
        while len(self._pending) > self._max:
            out.append(self._pending[: self._max])
            self._pending = self._pending[self._max :]
        return out

    def _cut(self, line: str) -> list[str]:
        if len(line) <= self._max:
            return [line]
        return [line[i : i + self._max] for i in range(0, len(line), self._max)]

    def flush(self) -> list[str]:
        """The last, unterminated line (if any) once the stream has ended."""
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return self._cut(rest.removesuffix("\r")) if rest else []


class StepClock:
    """Decides when a running step must be stopped, and says why.

    :meth:`stop_reason` returns the :class:`StepTimeout` or
    :class:`BuildCancelled` to raise instead of raising it, because the
    caller must kill the step first so that nothing keeps running after the
    exception propagates.
    """

    def __init__(
        self,
        step: str,
        command_timeout: float,
        no_response_timeout: float,
        cancel: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.step = step
        self._command_timeout = command_timeout
        self._no_response_timeout = no_response_timeout
        self._cancel = cancel
        self._clock = clock
        self._started = self._last_output = clock()

    def output_seen(self) -> None:
        self._last_output = self._clock()

    def remaining(self) -> float:
        """Seconds until the nearest deadline (never negative)."""
        now = self._clock()
        left = min(
            self._started + self._command_timeout - now,
            self._last_output + self._no_response_timeout - now,
        )
        return max(0.0, left)

    def stop_reason(self) -> Exception | None:
        """The exception to raise if the step must stop now, else ``None``."""
        if self._cancel.is_set():
            return BuildCancelled(f"step {self.step!r} cancelled")
        now = self._clock()
        if now - self._started >= self._command_timeout:
            return StepTimeout(
                f"step {self.step!r} ran longer than command-timeout "
                f"({_seconds(self._command_timeout)})",
                step=self.step,
            )
        if now - self._last_output >= self._no_response_timeout:
            return StepTimeout(
                f"step {self.step!r} printed nothing for no-response-timeout "
                f"({_seconds(self._no_response_timeout)})",
                step=self.step,
            )
        return None


def _seconds(value: float) -> str:
    if value >= 60 and value % 60 == 0:
        return f"{int(value // 60)} min"
    return f"{value:g} s"
