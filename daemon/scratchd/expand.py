"""``$VAR`` / ``${VAR}`` expansion with wercker's semantics (used by compile and runner).

wercker interpolates step options with Go's ``os.Expand`` over the pipeline
environment (``util.Environment.Interpolate``), so that is the reference, edge
cases included, because real wercker.yml files rely on them:

* an unknown name expands to the empty string (no error, no ``$VAR`` left);
* ``$$``, ``$1``, ``$@`` ... are shell "special" one-character names and are
  looked up too (so ``$$`` becomes empty, not ``$``);
* ``${}`` and an unterminated ``${`` are eaten; ``${a b}`` looks up ``"a b"``;
* a ``$`` not followed by a name (``$ 5``, ``$.``) or at the very end stays.

The tests compare this function with Go's ``os.Expand`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping

from scratchd.models import Secret

_SPECIAL = frozenset("*#$@!?-0123456789")
_ALNUM = frozenset("_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def expand(text: str, env: Mapping[str, str | Secret]) -> str:
    """Expand ``$VAR`` and ``${VAR}`` in ``text`` from ``env`` like ``os.Expand``."""
    if "$" not in text:
        return text
    out: list[str] = []
    start = 0  # first character not copied yet
    j = 0
    while j < len(text):
        if text[j] == "$" and j + 1 < len(text):
            out.append(text[start:j])
            name, width = _shell_name(text, j + 1)
            if name:
                out.append(_text(env.get(name, "")))
            elif width == 0:
                out.append("$")  # valid syntax but no name: keep the dollar
            j += width
            start = j + 1
        j += 1
    out.append(text[start:])
    return "".join(out)


def _shell_name(text: str, i: int) -> tuple[str, int]:
    """The name starting at ``text[i]`` and how many characters it took.

    Mirrors Go's ``getShellName``: an empty name with a width > 0 means bad
    syntax whose characters are swallowed.
    """
    first = text[i]
    if first == "{":
        if i + 2 < len(text) and text[i + 1] in _SPECIAL and text[i + 2] == "}":
            return text[i + 1], 3
        close = text.find("}", i + 1)
        if close == -1:
            return "", 1  # bad syntax; eat "${"
        if close == i + 1:
            return "", 2  # bad syntax; eat "${}"
        return text[i + 1 : close], close - i + 1
    if first in _SPECIAL:
        return first, 1
    end = i
    while end < len(text) and text[end] in _ALNUM:
        end += 1
    return text[i:end], end - i


def _text(value: str | Secret) -> str:
    """A secret expands to its value: the result is step environment (its point of use)."""
    return value.reveal() if isinstance(value, Secret) else value
