"""``/badge/<repo>[/<branch>].svg``: a shields-style status badge, drawn here (no fetches)."""

from __future__ import annotations

from scratchd.web.html import h

COLOURS = {
    "passed": "#2e9e44",
    "failed": "#d73a31",
    "error": "#d73a31",
    "running": "#2f74c0",
    "queued": "#8a8a8a",
    "cancelled": "#8a8a8a",
    "interrupted": "#c58a00",
}


def _width(text: str) -> int:
    return 6 * len(text) + 12  # Verdana 11px averages ~6px per character


def svg(label: str, status: str) -> str:
    left, right = _width(label), _width(status)
    colour = COLOURS.get(status, "#8a8a8a")
    total = left + right
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" \
role="img" aria-label="{h(label)}: {h(status)}"><title>{h(label)}: {h(status)}</title>
<rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" \
fill="{colour}"/><g fill="#fff" text-anchor="middle" font-family="Verdana,DejaVu Sans,sans-serif" \
font-size="11"><text x="{left / 2}" y="14">{h(label)}</text>\
<text x="{left + right / 2}" y="14">{h(status)}</text></g></svg>"""


def status_of(state, repo: str, branch: str | None) -> str:
    """The newest finished build's status of ``repo`` (on ``branch``); ``unknown`` if none."""
    where = "WHERE repo=? AND status IN ('passed','failed','error')"
    params: list = [repo]
    if branch is not None:
        where += " AND branch=?"
        params.append(branch)
    found = state.builds(where, params, limit=1)
    return str(found[0].status) if found else "unknown"
