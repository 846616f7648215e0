"""Errors and warnings about a wercker.yml, each at a line and column.

The parser never stops at the first problem: it records a
:class:`Diagnostic` and goes on, so ``scratchd lint`` can show every problem
of a file at once, while ``parse_plan`` raises the first error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One finding; ``line``/``col`` are 1-based, 0 when not tied to a place."""

    line: int
    col: int
    severity: str = field(compare=False)
    message: str = field(compare=False)

    def format(self, path: str) -> str:
        """``FILE:LINE:COL: message`` (``warning:`` before warnings' messages)."""
        where = f"{path}:{self.line}:{self.col}" if self.line else path
        tag = "warning: " if self.severity == WARNING else ""
        return f"{where}: {tag}{self.message}"


class Collector:
    """Accumulates diagnostics while one file is compiled."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, where: tuple[int, int], message: str) -> None:
        self.items.append(Diagnostic(where[0], where[1], ERROR, message))

    def warn(self, where: tuple[int, int], message: str) -> None:
        self.items.append(Diagnostic(where[0], where[1], WARNING, message))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == WARNING]
