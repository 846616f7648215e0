"""Find the line of a key in TOML text, because ``tomllib`` forgets positions.

Error messages must say *where* a bad value is. ``tomllib`` returns plain
dicts, so this module scans the source once and maps every key path to the
line that defines it::

    [daemon]               ("daemon",)                  -> line of the header
    state_dir = "/x"       ("daemon", "state_dir")
    [registry."quay.io"]   ("registry", "quay.io")
    [[repo]]               ("repo", 0)   (the Nth [[repo]] block is index N-1)
    name = "cities"        ("repo", 0, "name")
    [repo.notify.team]     ("repo", 0, "notify", "team")  (a table inside the block)

It understands enough TOML to never mistake text inside strings or
multi-line arrays for a key; inline tables map to the line of their key.
"""

from __future__ import annotations

import re

KeyPath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


class KeyLines:
    """Line numbers (1-based) of the tables and keys of one TOML document."""

    def __init__(self, text: str) -> None:
        # Scanned at the first question, not here: a valid file never needs a line,
        # and with 1,000 repositories the scan cost as much as parsing the TOML.
        self._text = text
        self._found: dict[KeyPath, int] | None = None

    def line(self, path: KeyPath) -> int | None:
        """Line of ``path``, else of its closest enclosing table that has a line."""
        if self._found is None:
            self._found = self._scan(self._text)
        for end in range(len(path), 0, -1):
            found = self._found.get(tuple(path[:end]))
            if found is not None:
                return found
        return None

    @property
    def scanned(self) -> bool:
        """Whether any line was asked for yet (the scan is paid only then)."""
        return self._found is not None

    def _scan(self, text: str) -> dict[KeyPath, int]:
        lines: dict[KeyPath, int] = {}
        table: KeyPath = ()
        counts: dict[KeyPath, int] = {}
        scanner = _ValueScanner()
        for number, raw in enumerate(text.splitlines(), start=1):
            if scanner.open:
                scanner.feed(raw)
                continue
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("[["):
                parts = _split_key(line[2:])[0]
                name = (*_in_arrays(parts[:-1], counts), *parts[-1:])
                index = counts.get(name, 0)
                counts[name] = index + 1
                table = (*name, index)
                lines.setdefault(table, number)
            elif line.startswith("["):
                table = _in_arrays(_split_key(line[1:])[0], counts)
                lines.setdefault(table, number)
            else:
                parts, rest = _split_key(line)
                if parts and rest.startswith("="):
                    lines.setdefault((*table, *parts), number)
                    scanner.feed(rest[1:])
        return lines


def _in_arrays(parts: list[str], counts: dict[KeyPath, int]) -> KeyPath:
    """``[repo.notify.x]`` after the 2nd ``[[repo]]`` is ``("repo", 1, "notify", "x")``."""
    out: list[str | int] = []
    for part in parts:
        out.append(part)
        if tuple(out) in counts:
            out.append(counts[tuple(out)] - 1)
    return tuple(out)


def _split_key(text: str) -> tuple[list[str], str]:
    """Parse a (dotted, possibly quoted) key at the start of ``text``."""
    parts: list[str] = []
    rest = text.lstrip()
    while rest:
        if rest[0] in "\"'":
            quote = rest[0]
            end = rest.find(quote, 1)
            while quote == '"' and end > 0 and rest[end - 1] == "\\":
                end = rest.find(quote, end + 1)
            if end < 0:
                return parts, ""
            parts.append(rest[1:end])
            rest = rest[end + 1 :].lstrip()
        else:
            match = _BARE.match(rest)
            if not match:
                return parts, rest
            parts.append(match.group())
            rest = rest[match.end() :].lstrip()
        if not rest.startswith("."):
            return parts, rest
        rest = rest[1:].lstrip()
    return parts, rest


class _ValueScanner:
    """Tracks whether a value continues on the next line (open brackets or ``\"\"\"``)."""

    def __init__(self) -> None:
        self.depth = 0
        self.multiline: str | None = None

    @property
    def open(self) -> bool:
        return self.depth > 0 or self.multiline is not None

    def feed(self, text: str) -> None:
        i = 0
        while i < len(text):
            if self.multiline is not None:
                end = text.find(self.multiline, i)
                if end < 0:
                    return
                i, self.multiline = end + 3, None
                continue
            ch = text[i]
            if text.startswith(('"""', "'''"), i):
                self.multiline, i = text[i : i + 3], i + 3
            elif ch in "\"'":
                i = _end_of_string(text, i)
            elif ch == "#":
                return
            else:
                self.depth += (ch in "[{") - (ch in "]}")
                i += 1


def _end_of_string(text: str, start: int) -> int:
    quote, i = text[start], start + 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    return i


def dotted(path: KeyPath) -> str:
    """How messages spell a key path: ``repo[2].branches``, ``registry."quay.io".username``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            text = part if _BARE.fullmatch(part) else f'"{part}"'
            out += f".{text}" if out else text
    return out
