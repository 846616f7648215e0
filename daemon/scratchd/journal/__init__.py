"""Where log records go: journald when it is our log, stderr otherwise.

``install_handler`` is called once by the CLI (``scratchd.cli``); library
code only does ``logging.getLogger(__name__)`` and passes journal fields as
``extra`` — upper-case names become journal fields (``REPO``, ``BRANCH``,
``COMMIT``, ``BUILD_ID``, ``PIPELINE``, ``STEP``, ``IMAGE_DIGEST``), so
``journalctl -u scratchd REPO=cities BUILD_ID=42`` shows one build.

Step output goes through :func:`output_consumer` (a consumer of the
executor's ``OutputLine``) or :func:`step_output_sink` (a backend
``LineSink``): stdout lines at INFO (journal priority 6), stderr lines at
NOTICE (5), on the ``scratchd.step`` logger with ``STREAM`` set.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from scratchd.journal.handlers import (
    NOTICE,
    ConsoleFormatter,
    ConsoleHandler,
    JournalHandler,
    priority,
)
from scratchd.journal.native import SOCKET_PATH, JournalSocket, stderr_is_journal
from scratchd.redact import Redactor

__all__ = [
    "MAX_LINE",
    "NOTICE",
    "STEP_LOGGER",
    "ConsoleFormatter",
    "ConsoleHandler",
    "JournalHandler",
    "JournalSocket",
    "install_handler",
    "installed_redactor",
    "output_consumer",
    "priority",
    "step_output_sink",
    "use_journal",
]

STEP_LOGGER = "scratchd.step"
#: Step output lines longer than this are split (journald's own stream LineMax).
MAX_LINE = 48 * 1024
# Chatty at INFO (apscheduler logs every poll run): kept at WARNING unless -vv.
_QUIET = ("apscheduler", "urllib3", "docker", "watchdog")


def use_journal(
    prefer_journal: bool | None = None,
    socket_path: str = SOCKET_PATH,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Log to journald? Forced by ``prefer_journal``; else only when it is our stderr.

    The socket alone is not enough: ``scratchd build`` in a terminal of a
    systemd host should print to the terminal, not vanish into the journal.
    """
    if prefer_journal is not None:
        return prefer_journal
    return stderr_is_journal(dict(os.environ if environ is None else environ)) and (
        os.path.exists(socket_path)
    )


def install_handler(
    level: int,
    prefer_journal: bool | None = None,
    *,
    redactor: Redactor | None = None,
    stream=None,
    socket_path: str = SOCKET_PATH,
) -> logging.Handler:
    """Configure the root logger with one scratchd handler; returns it.

    Calling it again replaces the previous scratchd handler (the daemon may
    re-install with its own ``redactor``). The handler's ``redactor``
    attribute is the object to ``add()`` secret values to; it is created
    here when not given.
    """
    redactor = redactor if redactor is not None else Redactor()
    console = ConsoleHandler(redactor, stream if stream is not None else sys.stderr)
    handler: logging.Handler = console
    if use_journal(prefer_journal, socket_path):
        handler = JournalHandler(redactor, JournalSocket(socket_path), fallback=console)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, ConsoleHandler | JournalHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.NOTSET if level < logging.INFO else "WARNING")
    return handler


def installed_redactor(logger: logging.Logger | None = None) -> Redactor | None:
    """The redactor of the scratchd handler installed on ``logger`` (root by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        if isinstance(handler, ConsoleHandler | JournalHandler):
            return handler.redactor
    return None


def step_output_sink(
    fields: Mapping[str, object],
    *,
    redactor: Redactor | None = None,
    logger: logging.Logger | None = None,
) -> Callable[[str, str], None]:
    """A runner ``LineSink`` (``on_line(stream, text)``) that logs step output.

    ``fields`` are the build's journal fields (``REPO``, ``BUILD_ID``,
    ``PIPELINE``, ``STEP`` ...); ``redactor`` the build's secrets. Lines
    longer than :data:`MAX_LINE` are split so no single entry gets huge.
    """
    log = logger or logging.getLogger(STEP_LOGGER)

    def on_line(stream: str, text: str) -> None:
        _log_line(log, stream, text, {**fields, "redactor": redactor})

    return on_line


def output_consumer(
    fields: Mapping[str, object],
    *,
    redactor: Redactor | None = None,
    logger: logging.Logger | None = None,
) -> Callable[[Any], None]:
    """A consumer of the executor's ``OutputLine`` objects (``scratchd.runner.sink``).

    Takes each line's ``build_id``, ``pipeline``, ``step``, ``stream`` and
    ``text`` (duck-typed: this module does not import the runner); ``fields``
    adds the rest (``REPO``, ``BRANCH``, ``COMMIT``). Scratchd's own lines
    (stream ``info``: step headers, results) are logged at INFO like stdout.
    """
    log = logger or logging.getLogger(STEP_LOGGER)

    def consume(line: Any) -> None:
        extra = {
            **fields,
            "BUILD_ID": line.build_id,
            "PIPELINE": line.pipeline,
            "STEP": line.step,
            "redactor": redactor,
        }
        _log_line(log, line.stream, line.text, extra)

    return consume


def _log_line(log: logging.Logger, stream: str, text: str, extra: dict[str, object]) -> None:
    level = NOTICE if stream == "stderr" else logging.INFO
    extra["STREAM"] = stream
    for start in range(0, max(len(text), 1), MAX_LINE):
        log.log(level, text[start : start + MAX_LINE], extra=extra)
