"""Durations in the config file: ``"60s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or a number.

A bare number means seconds, so ``poll_interval = 60`` and ``poll_interval =
"60s"`` mean the same; units make long values readable (``"1h30m"``) without
anyone having to multiply in their head.
"""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(value: object) -> float:
    """Seconds for a duration value; raises ``ValueError`` with a readable reason."""
    if isinstance(value, bool):
        raise ValueError('expected a duration such as 60, "60s", "5m" or "1h30m", got a boolean')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError(f'expected a duration such as "60s", got {type(value).__name__}')
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return seconds


def _parse_text(text: str) -> float:
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(
            f"invalid duration {text!r}: use a number of seconds or units ms, s, m, h, d "
            '(e.g. "90s", "5m", "1h30m")'
        )
    return total


def format_duration(seconds: float) -> str:
    """Short human form used by ``scratchd builds`` and check-config (``1h02m``, ``42s``)."""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
