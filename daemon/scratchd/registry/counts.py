"""Per-outcome blob counts of a push, shared by the image's and the attestation's side.

A blob reaches a repository one of three ways (``PUSH_OUTCOMES``): uploaded,
already there (existed), or mounted from another repository. The daemon's
metrics report blobs and bytes per outcome, so both sides of an attested
push count the same way and the totals are merged at the end.
"""

from __future__ import annotations

from collections.abc import Iterable

from scratchd.models import PUSH_OUTCOMES

#: Per outcome ("uploaded", "existed", "mounted"): (blobs, bytes).
Counts = dict[str, tuple[int, int]]


def tally(outcomes: Iterable[tuple[str, int]]) -> Counts:
    """(outcome, size) per blob -> (blobs, bytes) per outcome."""
    counts = {o: (0, 0) for o in PUSH_OUTCOMES}
    for outcome, size in outcomes:
        n, total = counts[outcome]
        counts[outcome] = (n + 1, total + size)
    return counts


def merge(a: Counts, b: Counts) -> Counts:
    return {o: (a[o][0] + b[o][0], a[o][1] + b[o][1]) for o in PUSH_OUTCOMES}
