"""Server-rendered HTML: every value goes through :func:`h` (escaping), no template engine.

Pages work without JavaScript; ``app.js`` adds the live parts (the change
feed re-fetches the page's ``<main>``, the log viewer follows its stream).
Write actions stay in the CLI: the pages offer "copy command" buttons.
"""

from __future__ import annotations

import html
import json
import time
import urllib.parse
from datetime import UTC, datetime

from scratchd import __version__

STATUS_LIST = ("queued", "running", "passed", "failed", "error", "cancelled", "interrupted")


def h(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    text = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{h(ts)}">{h(text)}</time>'


def dur(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def duration_of(b: dict, now: float | None = None) -> str:
    if b.get("started_at") is None:
        return "-"
    end = b.get("finished_at") or (now or time.time())
    return dur(end - b["started_at"])


def badge(status) -> str:
    return f'<span class="st st-{h(status)}">{h(status)}</span>'


def link_build(b: dict) -> str:
    return f'<a href="/builds/{int(b["id"])}">#{int(b["id"])}</a>'


def copy_button(command: str) -> str:
    return (
        f'<button type="button" class="copy" data-copy="{h(command)}" '
        f'title="copy to clipboard">copy <code>{h(command)}</code></button>'
    )


def page(title: str, body: str, *, live: str = "", data: dict | None = None) -> str:
    """The layout. ``live`` names the page's SSE feed (the JS re-renders ``<main>`` on events)."""
    attrs = f' data-live="{h(live)}"' if live else ""
    script = ""
    if data is not None:
        blob = json.dumps(data).replace("<", "\\u003c")
        script = f'<script id="page-data" type="application/json">{blob}</script>'
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{h(title)} · scratchd</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
</head><body{attrs}>
<header><a class="brand" href="/">scratchd</a>
<nav><a href="/">dashboard</a><a href="/builds">builds</a></nav></header>
<main id="main">{body}</main>
<footer>scratchd {h(__version__)} · read-only: write actions are CLI commands</footer>
{script}<script src="/static/app.js"></script>
</body></html>"""


def error_page(status: int, reason: str, detail: str) -> str:
    return page(f"{status} {reason}", f"<h1>{status} {h(reason)}</h1><p>{h(detail)}</p>")


def builds_table(builds: list[dict], now: float) -> str:
    rows = "".join(
        f"<tr><td>{link_build(b)}</td>"
        f'<td><a href="/repos/{urllib.parse.quote(b["repo"])}">{h(b["repo"])}</a></td>'
        f"<td>{h(b['branch'])}</td><td><code>{h(b['sha'][:8])}</code> "
        f"{h(b.get('commit_subject') or '')}</td><td>{badge(b['status'])}</td>"
        f"<td>{h(b['trigger'])}</td><td>{when(b['created_at'])}</td>"
        f"<td>{duration_of(b, now)}</td></tr>"
        for b in builds
    )
    head = "".join(
        f"<th>{c}</th>"
        for c in ("build", "repo", "branch", "commit", "status", "trigger", "queued", "duration")
    )
    return f'<table class="builds"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def select(name: str, options, current: str | None) -> str:
    opts = '<option value="">any</option>' + "".join(
        f'<option value="{h(o)}"{" selected" if o == current else ""}>{h(o)}</option>'
        for o in options
    )
    return f'<label>{h(name)} <select name="{h(name)}">{opts}</select></label>'
