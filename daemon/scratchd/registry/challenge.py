"""``WWW-Authenticate`` parsing (RFC 7235) for registry auth challenges.

A header may carry several challenges (``Basic realm="x", Bearer
realm="https://auth",service="quay.io"``) and quoted values may contain
commas, spaces and backslash escapes, so a regular expression split on commas
is not enough: this is a small scanner over the grammar.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True)
class Challenge:
    """One challenge: scheme lowercased (``basic``, ``bearer``), params by lowercase name."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.params.get(name, default)


def parse_challenges(header: str) -> list[Challenge]:
    """All challenges of one header value, in order; garbage yields what parsed so far."""
    scanner = _Scanner(header)
    out: list[Challenge] = []
    while True:
        scanner.skip(" \t,")
        scheme = scanner.token()
        if not scheme:
            return out
        params: dict[str, str] = {}
        while True:
            scanner.skip(" \t")
            mark = scanner.pos
            name = scanner.token()
            scanner.skip(" \t")
            if not name or not scanner.take("="):
                scanner.pos = mark  # the next challenge's scheme (or a token68 / end)
                if name and not params and scanner.peek_token68():
                    scanner.pos = len(scanner.text)  # token68 credentials: not used by registries
                break
            scanner.skip(" \t")
            # Unquoted values should be tokens, but some servers send bare URLs.
            params[name.lower()] = scanner.quoted() if scanner.peek('"') else scanner.bare()
            scanner.skip(" \t")
            if not scanner.take(","):
                break
        out.append(Challenge(scheme.lower(), params))


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text, self.pos = text, 0

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def peek(self, char: str) -> bool:
        return self.text.startswith(char, self.pos)

    def take(self, char: str) -> bool:
        if self.peek(char):
            self.pos += len(char)
            return True
        return False

    def token(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in _TOKEN_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def bare(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ", \t":
            self.pos += 1
        return self.text[start : self.pos]

    def quoted(self) -> str:
        self.pos += 1  # opening quote
        out: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == "\\" and self.pos < len(self.text):
                out.append(self.text[self.pos])
                self.pos += 1
            elif char == '"':
                break
            else:
                out.append(char)
        return "".join(out)

    def peek_token68(self) -> bool:
        rest = self.text[self.pos :].strip()
        return bool(rest) and "," not in rest and " " not in rest
