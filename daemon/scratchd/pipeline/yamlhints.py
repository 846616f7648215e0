"""The likely cause of a YAML syntax error, said as a sentence, at the line it is on.

PyYAML reports where the parser gave up, which is often the line *after*
the mistake (``name:test`` is read as text; the parser only complains at
the next ``code:``). The common mistakes in real wercker.yml files are few:
a tab (handled by the caller), a missing space after ``:``, and a key
indented off the column of its siblings. :func:`likely_cause` recognises
those from the source lines; anything else keeps PyYAML's own words.
"""

from __future__ import annotations

import re

# ``key:value`` with no space: YAML reads the whole thing as one text value.
# A ``:`` followed by ``/`` is a URL or a path (``http://``, ``file://``), not a key.
_NO_SPACE = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z0-9_.-]+):(?=[^\s/:])")
_KEY = re.compile(r"^(\s*(?:-\s+)?)([A-Za-z0-9_.-]+):(\s|$)")


def likely_cause(problem: str, lines: list[str], line: int) -> tuple[tuple[int, int], str] | None:
    """((line, column), sentence) for a recognised mistake near ``line`` (1-based)."""
    if "mapping values are not allowed" in problem:
        return _missing_space(lines, line) or _over_indented(lines, line)
    if "expected <block end>" in problem:
        return _off_column(lines, line)
    return None


def _missing_space(lines: list[str], line: int) -> tuple[tuple[int, int], str] | None:
    for number in (line - 1, line):
        text = lines[number - 1] if 0 < number <= len(lines) else ""
        match = _NO_SPACE.match(text)
        if match:
            key = match.group(2)
            return (number, match.end() + 1), (
                f"missing space after ':' in '{text.strip()}': YAML reads it as text; "
                f"write '{key}: {text[match.end() :].strip()}'"
            )
    return None


def _over_indented(lines: list[str], line: int) -> tuple[tuple[int, int], str] | None:
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    match = _KEY.match(here)
    previous = _previous_line(lines, line)
    if not match or previous is None:
        return None
    above = _KEY.match(lines[previous - 1])
    indent, above_indent = _indent(here), _indent(lines[previous - 1])
    if not above or indent <= above_indent:
        return None
    return (line, indent + 1), (
        f"'{match.group(2)}:' is indented more than '{above.group(2)}:' on line {previous}; "
        "keys of one map must start in the same column"
    )


def _off_column(lines: list[str], line: int) -> tuple[tuple[int, int], str] | None:
    here = lines[line - 1] if 0 < line <= len(lines) else ""
    match = _KEY.match(here)
    if not match:
        return None
    indent = _indent(here)
    columns = sorted({_indent(t) for t in lines[: line - 1] if _KEY.match(t)})
    return (line, indent + 1), (
        f"'{match.group(2)}:' is indented {indent} spaces, which lines it up with no key "
        f"above it (keys above start at {', '.join(str(c) for c in columns)} spaces); "
        "indent it like the key it belongs beside"
    )


def _previous_line(lines: list[str], line: int) -> int | None:
    for number in range(line - 1, 0, -1):
        if lines[number - 1].strip() and not lines[number - 1].lstrip().startswith("#"):
            return number
    return None


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))
