"""Logging handlers: journald native fields, or readable lines on stderr.

Both handlers mask secrets the same way: every text that leaves the process
(message, traceback, field values) goes through the handler's
:class:`~scratchd.redact.Redactor` — one object the daemon owns and fills with
the secret values it reads (registry passwords, secrets files) — and through
the record's own ``redactor`` attribute when the caller passes a per-build
one as ``extra={"redactor": build_redactor}``. Nothing is kept in module
globals, so two daemons in one test process never share secrets.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from scratchd.journal.native import JournalSocket, valid_field_name
from scratchd.redact import Redactor

IDENTIFIER = "scratchd"
#: syslog's "notice" (5) between INFO and WARNING: step output on stderr uses it.
NOTICE = 25

# Fields computed by the handler that an ``extra`` must not overwrite.
_RESERVED = {"MESSAGE", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "SYSLOG_IDENTIFIER", "LOGGER"}
_LEVEL_NAMES = {NOTICE: "NOTICE"}


def priority(levelno: int) -> int:
    """syslog priority (0 emerg .. 7 debug) of a logging level."""
    for threshold, prio in ((50, 2), (40, 3), (30, 4), (NOTICE, 5), (20, 6)):
        if levelno >= threshold:
            return prio
    return 7


def extra_fields(record: logging.LogRecord) -> Iterator[tuple[str, object]]:
    """The record's ``extra`` entries that are journal field names (``REPO`` ...).

    Lower-case attributes (``redactor``, logging's own) never become fields;
    empty values are left out so ``journalctl -F STEP`` lists real steps only.
    """
    for name, value in record.__dict__.items():
        if name in _RESERVED or not valid_field_name(name):
            continue
        if value is None or value == "":
            continue
        yield name, value


class _Redacting:
    """Mixin: the handler's redactor plus the record's per-build one."""

    redactor: Redactor

    def redact(self, record: logging.LogRecord, text: str) -> str:
        text = self.redactor.redact(text)
        extra = getattr(record, "redactor", None)
        if isinstance(extra, Redactor):
            text = extra.redact(text)
        return text


class ConsoleFormatter(logging.Formatter):
    """``2026-01-02 03:04:05 INFO    [cities#42 build/compile] text``.

    The bracket shows whichever of repo, build id, pipeline and step the
    record carries, so interleaved builds stay readable without a journal.
    """

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        level = _LEVEL_NAMES.get(record.levelno, record.levelname)
        context = self.context(record)
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return f"{stamp} {level:<7} {context}{text}"

    @staticmethod
    def context(record: logging.LogRecord) -> str:
        def get(name: str) -> str:
            value = getattr(record, name, None)
            return "" if value is None else str(value)

        repo, build = get("REPO"), get("BUILD_ID")
        head = f"{repo}#{build}" if build else repo
        where = "/".join(p for p in (get("PIPELINE"), get("STEP")) if p)
        inside = " ".join(p for p in (head, where) if p)
        return f"[{inside}] " if inside else ""


class ConsoleHandler(_Redacting, logging.StreamHandler):
    """Human-readable lines on stderr, for terminals and plain log files."""

    def __init__(self, redactor: Redactor, stream=None) -> None:
        super().__init__(stream)
        self.redactor = redactor
        self.setFormatter(ConsoleFormatter())

    def format(self, record: logging.LogRecord) -> str:
        text = self.redact(record, super().format(record))
        # Binary step output arrives as surrogate-escaped text; show it escaped.
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


class JournalHandler(_Redacting, logging.Handler):
    """Sends each record to journald as one entry with structured fields.

    If journald cannot be reached (socket gone, send timeout) the record is
    written by the ``fallback`` handler instead: a log line is never lost
    silently and never raises into the code that logged it.
    """

    def __init__(
        self,
        redactor: Redactor,
        sock: JournalSocket | None = None,
        fallback: logging.Handler | None = None,
        identifier: str = IDENTIFIER,
    ) -> None:
        super().__init__()
        self.redactor = redactor
        self.sock = sock or JournalSocket()
        self.fallback = fallback or ConsoleHandler(redactor)
        self.identifier = identifier
        self._text = logging.Formatter()

    def entry(self, record: logging.LogRecord) -> list[tuple[str, object]]:
        """The journal fields of one record, secrets already masked."""
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self._text.formatException(record.exc_info)
        fields: list[tuple[str, object]] = [
            ("MESSAGE", self.redact(record, message)),
            ("PRIORITY", priority(record.levelno)),
            ("SYSLOG_IDENTIFIER", self.identifier),
            ("LOGGER", record.name),
            ("CODE_FILE", record.pathname),
            ("CODE_LINE", record.lineno),
            ("CODE_FUNC", record.funcName),
        ]
        for name, value in extra_fields(record):
            fields.append((name, self.redact(record, str(value))))
        if any(name == "PRIORITY" for name, _ in fields[2:]):
            fields.pop(1)  # an explicit PRIORITY in ``extra`` wins
        return fields

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = self.entry(record)
        except Exception:  # a bad format string: logging's own policy, never raise
            self.handleError(record)
            return
        try:
            self.sock.send(fields)
        except OSError:
            self.fallback.handle(record)

    def close(self) -> None:
        self.sock.close()
        super().close()
