"""The four pages: dashboard, all builds, one repository, one build."""

from __future__ import annotations

import json
import urllib.parse

from scratchd.web.html import (
    STATUS_LIST,
    badge,
    builds_table,
    copy_button,
    dur,
    duration_of,
    h,
    link_build,
    page,
    select,
    when,
)


def dashboard(data: dict, now: float) -> str:
    alive = data["alive"]
    head = (
        f'<p class="daemon {"up" if alive else "down"}">daemon '
        f"{'running' if alive else 'not running'}</p>"
    )
    tiles = "".join(_tile(t) for t in data["repos"]) or "<p>no repositories configured</p>"
    queue = "".join(
        f"<li>{q['position']}. {link_build(q)} {h(q['repo'])} {h(q['branch'])} "
        f"<code>{h(q['sha'][:8])}</code> waiting {dur(q['waiting'])}</li>"
        for q in data["queued"]
    )
    executors = "".join(
        f'<li>{h(e["executor"])}: <meter min="0" max="{e["capacity"]}" '
        f'value="{e["running"]}"></meter> {e["running"]}/{e["capacity"]}'
        f"{' <strong>down</strong>' if e.get('up') is False else ''}</li>"
        for e in data["executors"]
    )
    body = (
        f"<h1>Dashboard</h1>{head}<section class='tiles'>{tiles}</section>"
        f"<section><h2>Queue ({len(data['queued'])})</h2><ol class='queue'>{queue}</ol></section>"
        f"<section><h2>Executors</h2><ul class='executors'>{executors}</ul></section>"
    )
    return page("Dashboard", body, live="/events")


def _tile(t: dict) -> str:
    last = t["last"]
    status = last["status"] if last else "none"
    lines = [f'<h2><a href="/repos/{urllib.parse.quote(t["repo"])}">{h(t["repo"])}</a></h2>']
    if t["pipelines"]:
        lines.append(f'<p class="pipes">{h(" → ".join(t["pipelines"]))}</p>')
    if last:
        lines.append(f"<p>last: {badge(status)} {link_build(last)} {h(last['branch'])}</p>")
    else:
        lines.append("<p>no builds yet</p>")
    if t["broken_since"]:
        b = t["broken_since"]
        who = f", {h(b['commit_author'])}" if b.get("commit_author") else ""
        lines.append(
            f'<p class="broken">broken since {link_build(b)} '
            f"(<code>{h(b['sha'][:8])}</code>{who})</p>"
        )
    for r in t["running"]:
        pct = int((r["progress"] or 0) * 100)
        eta = f", about {dur(r['eta'])} left" if r["eta"] is not None else ""
        lines.append(
            f'<p class="running">{link_build(r)} running {dur(r["elapsed"])}{eta} '
            f'<progress max="100" value="{pct}"></progress></p>'
        )
    lines.append(copy_button(f"scratchd trigger {t['repo']}"))
    return f'<article class="tile st-{h(status)}">{"".join(lines)}</article>'


def builds(data: dict, flt, repos: list[str], now: float) -> str:
    form = (
        '<form class="filters" method="get" action="/builds">'
        + select("repo", repos, flt.repo)
        + f'<label>branch <input name="branch" value="{h(flt.branch or "")}"></label>'
        + select("status", STATUS_LIST, flt.status)
        + select("trigger", ("push", "poll", "cron", "manual", "recovery"), flt.trigger)
        + "<button>filter</button></form>"
    )
    more = ""
    if data["next"] is not None:
        query = urllib.parse.urlencode(flt.query(before=data["next"]))
        more = f'<p><a class="next" href="/builds?{h(query)}">older builds →</a></p>'
    body = f"<h1>Builds</h1>{form}{builds_table(data['builds'], now)}{more}"
    return page("Builds", body, live="/events")


def repo(data: dict, base_url: str, now: float) -> str:
    name = data["repo"]
    quoted = urllib.parse.quote(name)
    rate = data["success_rate"]
    rate_text = f"{rate:.0%} of the last {data['finished_considered']}" if rate is not None else "-"
    branches = "".join(
        f"<tr><td>{h(b['branch'])}</td><td>{link_build(b)}</td><td>{badge(b['status'])}</td>"
        f"<td>{duration_of(b, now)}</td><td>{_branch_badge(quoted, b['branch'])}</td></tr>"
        for b in data["branches"]
    )
    snippet = f"![build]({base_url}/badge/{quoted}.svg)"
    body = (
        f"<h1>{h(name)}</h1><p>success rate: {h(rate_text)}</p>"
        f'<p><img alt="badge" src="/badge/{quoted}.svg"> <code class="snippet">{h(snippet)}</code> '
        f"{copy_button(snippet)} {copy_button(f'scratchd trigger {name}')}</p>"
        "<h2>Branches</h2><table><thead><tr><th>branch</th><th>last build</th><th>status</th>"
        f"<th>duration</th><th>badge</th></tr></thead><tbody>{branches}</tbody></table>"
        f"<h2>History</h2>{builds_table(data['history'], now)}"
        f'<p><a href="/builds?repo={quoted}">all builds of {h(name)} →</a></p>'
    )
    return page(name, body, live="/events")


def _branch_badge(quoted_repo: str, branch: str) -> str:
    src = f"/badge/{quoted_repo}/{urllib.parse.quote(branch, safe='')}.svg"
    return f'<img alt="badge" src="{h(src)}">'


def build(b: dict, steps: list[dict] | None, log: dict, now: float) -> str:
    bid = int(b["id"])
    running = b["status"] in ("queued", "running")
    facts = [
        ("repository", f'<a href="/repos/{urllib.parse.quote(b["repo"])}">{h(b["repo"])}</a>'),
        ("branch", h(b["branch"])),
        ("commit", f"<code>{h(b['sha'])}</code> {h(b.get('commit_subject') or '')}"),
        ("author", h(b.get("commit_author") or "-")),
        ("trigger", h(b["trigger"])),
        ("status", f'<span id="build-status">{badge(b["status"])}</span>'),
        ("queued", when(b["created_at"])),
        ("started", when(b["started_at"])),
        ("finished", when(b["finished_at"])),
        ("duration", duration_of(b, now)),
        ("executor", h(b.get("executor") or "-")),
        ("attempt", h(b["attempt"])),
    ]
    if b.get("message"):
        facts.append(("message", h(b["message"])))
    meta = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    images = "".join(f"<li><code>{h(i)}</code></li>" for i in b["images"]) or "<li>none</li>"
    if steps is None:  # a big log: the page's script fetches them once the log shows
        steps_table = (
            f"<table class='steps' data-src='/builds/{bid}/steps.json'><tbody>"
            "<tr><td>reading steps from the log…</td></tr></tbody></table>"
        )
    else:
        rows = "".join(
            f'<tr><td><a href="#L{s["line"]}">{h(s["pipeline"])}/{h(s["name"])}</a></td>'
            f"<td>{badge(s['status'])}</td><td>{dur(s['duration'])}</td></tr>"
            for s in steps
        )
        steps_table = f"<table class='steps'><tbody>{rows}</tbody></table>"
    command = f"scratchd cancel {bid}" if running else f"scratchd trigger {b['repo']}"
    body = (
        f"<h1>Build #{bid}</h1><dl class='meta'>{meta}</dl>{copy_button(command)}"
        f"<h2>Steps</h2>{steps_table}"
        f"<h2>Images</h2><ul class='images'>{images}</ul>"
        "<h2>Log</h2><div class='logbar'>"
        '<button type="button" id="load-earlier">load earlier</button>'
        '<label><input type="checkbox" id="show-ts"> timestamps</label>'
        f'<label><input type="checkbox" id="follow"{" checked" if running else ""}> follow</label>'
        f'<a href="/builds/{bid}/log.txt">Raw</a> '
        f'<a href="/builds/{bid}/log.txt?download=1">Download</a>'
        f'<span id="log-info"></span></div><div id="log" class="log"></div>'
    )
    data = {"build": bid, "running": running, **log}
    return page(f"Build #{bid}", body, data=json.loads(json.dumps(data)))
