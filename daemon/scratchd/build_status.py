"""A build's status, apart from :mod:`scratchd.models` so a reader need not load it.

``scratchd builds --status S`` checks ``S`` against these names; importing
the shared models for that cost more (their dataclasses) than the command's
query. :mod:`scratchd.models` re-exports the class, its usual home.
"""

from __future__ import annotations

import enum


class BuildStatus(enum.StrEnum):
    """The life of a build record. Only ``PASSED`` means it passed."""

    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"  # the user's build failed
    ERROR = "error"  # infrastructure error after retries
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # daemon stopped or crashed mid-build

    @property
    def finished(self) -> bool:
        return self in {self.PASSED, self.FAILED, self.ERROR, self.CANCELLED}
