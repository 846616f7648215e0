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
    #: The pipeline the finding is inside ("" for the file's top level): lint
    #: leaves out warnings of pipelines a run would not start.
    pipeline: str = field(default="", compare=False)
    #: Errors of one repeated mistake share a group and are shown once.
    group: str = field(default="", compare=False)

    def format(self, path: str) -> str:
        """``FILE:LINE:COL: message`` (``warning:`` before warnings' messages)."""
        where = f"{path}:{self.line}:{self.col}" if self.line else path
        tag = "warning: " if self.severity == WARNING else ""
        return f"{where}: {tag}{self.message}"


class Collector:
    """Accumulates diagnostics while one file is compiled."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []
        self.pipeline = ""  # set by the reader while it is inside a pipeline

    def error(self, where: tuple[int, int], message: str, group: str = "") -> None:
        self.items.append(Diagnostic(where[0], where[1], ERROR, message, self.pipeline, group))

    def warn(self, where: tuple[int, int], message: str) -> None:
        self.items.append(Diagnostic(where[0], where[1], WARNING, message, self.pipeline))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == WARNING]


def condense(found: list[Diagnostic], running: frozenset[str] | None) -> list[Diagnostic]:
    """What lint shows: sorted, one error per repeated mistake, each warning once.

    ``running`` names the pipelines a run would start (None: all); warnings
    inside other pipelines (a ``dev`` pipeline of ``internal/watch``) are
    left out. Errors always stay: the daemon refuses the whole file.
    """
    out: list[Diagnostic] = []
    groups: dict[str, list[Diagnostic]] = {}
    seen: set[str] = set()
    for d in sorted(found):
        if d.severity == ERROR and d.group:
            groups.setdefault(d.group, []).append(d)
            if len(groups[d.group]) > 1:
                continue
        elif d.severity == WARNING:
            if running is not None and d.pipeline and d.pipeline not in running:
                continue
            if d.message in seen:
                continue
            seen.add(d.message)
        out.append(d)
    return [_grouped(d, groups.get(d.group, [])) if d.group else d for d in out]


def _grouped(first: Diagnostic, all_of: list[Diagnostic]) -> Diagnostic:
    if len(all_of) < 2:
        return first
    lines = ", ".join(str(d.line) for d in all_of[1:])
    message = f"{first.message} (the same on line{'s' if len(all_of) > 2 else ''} {lines})"
    return Diagnostic(first.line, first.col, ERROR, message, first.pipeline, first.group)
