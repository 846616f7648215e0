"""Reading a plain command line without argparse, for commands people type often.

Importing argparse and building the parser cost about as much as the whole
of ``scratchd builds`` does without them. A command module may offer
``quick_args(words)``: it reads its options with :func:`parse_plain` and
returns the namespace argparse would have made, or ``None`` to hand the
command line to argparse. ``None`` is the answer for anything but options
spelled out in full with plain values, so help, abbreviations and every
mistake still get argparse's own words, usage line and exit code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal


class Option:
    """One option: where its value goes, and how it is read.

    A plain class: a ``NamedTuple`` is made by ``exec`` of generated code,
    a millisecond of the start-up this module exists to save.
    """

    __slots__ = ("convert", "dest", "kind")

    def __init__(
        self,
        dest: str,
        kind: Literal["flag", "value", "append"],
        convert: Callable[[str], object] = str,  # argparse's ``type=``; raising: ask argparse
    ) -> None:
        self.dest, self.kind, self.convert = dest, kind, convert


def parse_plain(
    words: Sequence[str], options: Mapping[str, Option], defaults: Mapping[str, object]
) -> dict[str, object] | None:
    """``{dest: value}`` for ``words`` made only of ``options``; ``None`` for anything else.

    Read here: ``--name value`` and ``--name=value`` where the value is not
    empty and does not start with ``-`` (argparse could take that for an
    option), and flags without a value. Not read here: positionals, ``-h``,
    ``--``, abbreviated or unknown names, a value its converter refuses.
    """
    out = dict(defaults)
    at = 0
    while at < len(words):
        name, equals, value = words[at].partition("=")
        option = options.get(name)
        if option is None:
            return None
        at += 1
        if option.kind == "flag":
            if equals:
                return None
            out[option.dest] = True
            continue
        if not equals:
            if at == len(words):
                return None
            value, at = words[at], at + 1
        if not value or value.startswith("-"):
            return None
        try:
            converted = option.convert(value)
        except Exception:  # argparse reports it, in its words
            return None
        if option.kind == "append":
            out[option.dest] = [*(out[option.dest] or ()), converted]  # type: ignore[misc]
        else:
            out[option.dest] = converted
    return out
