"""Upper bounds of config values, and sizes such as ``"4MiB"``.

A typo like ``max_concurrent_builds = 1000000000`` or ``"99999999999d"``
must fail at load time, naming the key and its line, not as an
``OverflowError`` deep in a timer or a fork bomb of workers. The bounds are
generous: far above any sane setting, far below what breaks the daemon.
"""

from __future__ import annotations

import math
import re

MAX_CONCURRENT_BUILDS = 256
MAX_KEEP_BUILDS = 100_000
MAX_RETRY_LIMIT = 100
MAX_DURATION = 7 * 86400.0  # a week: every duration key
MAX_SIZE = 1 << 40  # 1 TiB: every size key

_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "tib": 1 << 40,
}  # fmt: skip
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")


def parse_size(value: object) -> int:
    """Bytes for ``4194304``, ``"4MiB"``, ``"10GB"`` or ``"512k"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError('expected a size such as 4194304 or "4MiB", got a boolean')
    if isinstance(value, int):
        size = value
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value.strip().lower())
        if match is None or match.group(2) not in _UNITS:
            raise ValueError(
                f"invalid size {value!r}: use bytes or units k, M, G, T (x1000) or "
                'KiB, MiB, GiB, TiB (x1024), e.g. "4MiB"'
            )
        size = int(float(match.group(1)) * _UNITS[match.group(2)])
    else:
        raise ValueError(f'expected a size such as "4MiB", got {type(value).__name__}')
    if size < 0:
        raise ValueError(f"size must not be negative, got {value!r}")
    return size


def too_large(value: float, limit: float) -> bool:
    """Above ``limit``, or not a finite number at all (TOML allows ``inf`` and ``nan``)."""
    return not math.isfinite(value) or value > limit
