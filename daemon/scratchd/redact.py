"""Masking of secret values in text that leaves the process.

Step output, log lines, error messages and the state database all pass
through a :class:`Redactor` that knows the values of the build's secrets
(registry passwords, ``--secrets-file`` entries, ``password`` options).
Like pip's ``HiddenText``, the point is that a secret is registered once, at
the place it is read, and every sink downstream masks it without knowing
where it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# Values this short would mask ordinary words ("1", "on"); wercker skips them too.
_MIN_SECRET_LENGTH = 3


class Redactor:
    """Replaces every registered secret value with ``***``.

    Longer secrets are matched first so a secret that contains another one is
    masked whole. Instances are cheap; each build owns one.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self.add(*secrets)

    def add(self, *values: str) -> None:
        new = {str.__str__(v) for v in values if v and len(v) >= _MIN_SECRET_LENGTH}
        if new - self._values:
            self._values |= new
            ordered = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(v) for v in ordered))

    def redact(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def __bool__(self) -> bool:
        return bool(self._values)
