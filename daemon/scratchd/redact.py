"""Masking of secret values in text that leaves the process.

Step output, log lines, error messages and the state database all pass
through a :class:`Masker` that knows the values of the build's secrets
(registry passwords, ``--secrets-file`` entries, ``password`` options).
Like pip's ``HiddenText``, the point is that a secret is registered once, at
the place it is read, and every sink downstream masks it without knowing
where it came from.

The daemon owns one masker for the registry passwords it can read; each
build's masker is made with that one as a *parent*, so a password the
daemon learns mid-build (a rotated password file read at push time) is
masked in that build's output too.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from scratchd.models import MIN_SECRET_LENGTH, Secret

__all__ = ["MASK", "MIN_SECRET_LENGTH", "Masker", "Redactor", "maskable"]

MASK = "***"


def maskable(value: str | Secret) -> list[str]:
    """The texts to mask for one secret: the whole value and each of its lines.

    Output is masked line by line (a step prints a multi-line key one line at
    a time), so every line of a multi-line secret is a value of its own.
    Lines shorter than :data:`MIN_SECRET_LENGTH` are left out for the same
    reason short secrets are.
    """
    text = value.reveal() if isinstance(value, Secret) else value
    parts = [text, *(line.strip("\r") for line in text.split("\n"))] if "\n" in text else [text]
    return [p for p in parts if len(p) >= MIN_SECRET_LENGTH]


class Masker:
    """Replaces every registered secret value, and those of its parents, with ``***``.

    Longer secrets are matched first so a secret that contains another one is
    masked whole. Thread-safe; each build owns one, made when it starts.
    """

    def __init__(
        self, secrets: Iterable[str | Secret] = (), *, parents: Iterable[Masker] = ()
    ) -> None:
        self._values: frozenset[str] = frozenset()
        self._parents = tuple(parents)
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, ...], re.Pattern[str] | None] = ((), None)
        self.version = 0  # bumped by add(): children rebuild their pattern
        self.add(*secrets)

    def add(self, *values: str | Secret) -> None:
        """Mask these values from now on (a value too short to mask is ignored)."""
        new = {part for v in values if v for part in maskable(v)}
        with self._lock:
            if new - self._values:
                self._values |= new
                self.version += 1

    def values(self) -> frozenset[str]:
        """Every text this masker hides, its parents' included."""
        out = self._values
        for parent in self._parents:
            out |= parent.values()
        return out

    def redact(self, text: str) -> str:
        if not text:
            return text
        pattern = self._pattern()
        return pattern.sub(MASK, text) if pattern is not None else text

    def _versions(self) -> tuple[int, ...]:
        return (self.version, *(v for p in self._parents for v in p._versions()))

    def _pattern(self) -> re.Pattern[str] | None:
        versions = self._versions()
        cached_versions, pattern = self._cached
        if cached_versions != versions:
            ordered = sorted(self.values(), key=len, reverse=True)
            pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None
            self._cached = (versions, pattern)
        return pattern

    def __bool__(self) -> bool:
        return bool(self.values())


#: The name the rest of the code base knows it by.
Redactor = Masker
