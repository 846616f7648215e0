"""Retrying registry operations: exponential backoff with jitter, bounded twice.

Only failures that may go away are retried: 408, 429 (after its
``Retry-After``), 5xx and broken connections. The bound is both a number of
attempts and a wall-clock budget, so a registry that answers 503 forever
fails the push in predictable time instead of hanging a build.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from scratchd.errors import RegistryError

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class Retryable(RegistryError):
    """A failure worth another try; ``retry_after`` is the server's wish, in seconds."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 retry_after: float | None = None) -> None:  # fmt: skip
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; tests inject small numbers and a fake sleep."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 10.0
    budget: float = 120.0  # seconds for all attempts of one operation
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    jitter: Callable[[], float] = field(default=random.random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full backoff with ±50 % jitter; never shorter than ``Retry-After``."""
        backoff: float = min(self.cap, self.base * 2**attempt) * (0.5 + self.jitter())
        return max(backoff, retry_after or 0.0)

    def call(self, operation: Callable[[], T], what: str) -> T:
        """Run ``operation`` until it stops raising :class:`Retryable` or the bounds hit."""
        deadline = self.clock() + self.budget
        for attempt in range(max(1, self.attempts)):
            try:
                return operation()
            except Retryable as exc:
                wait = self.delay(attempt, exc.retry_after)
                last = attempt + 1 >= self.attempts
                if last or self.clock() + wait > deadline:
                    raise RegistryError(
                        f"{exc} (gave up on {what} after {attempt + 1} attempts)",
                        status=exc.status,
                        code=exc.code,
                    ) from None
                log.warning("%s failed: %s; retrying in %.1fs", what, exc, wait)
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - loop always returns/raises


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; garbage → None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())
