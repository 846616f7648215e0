"""The pages, JSON API and badges over real HTTP from a real ``scratchd web`` process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.web.support import WebProcess, get, write_config


def test_pages_render_the_state(web, seeded):
    _, _, ids = seeded
    home = get(web.url, "/")
    assert home.status == 200 and "text/html" in home.headers["content-type"]
    assert "app" in home.text and "idle" in home.text  # configured repo without builds
    assert f'href="/builds/{ids[3]}"' in home.text  # the running build
    listing = get(web.url, "/builds").text
    assert all(f"#{i}<" in listing for i in ids)
    repo = get(web.url, "/repos/app").text
    assert "67% of the last 3" in repo and "/badge/app.svg" in repo
    page = get(web.url, f"/builds/{ids[0]}").text
    assert "commit 0" in page and "Ada &lt;ada@example.org&gt;" in page
    assert "build/compile" in page and "build/test" in page  # steps from the log
    assert "registry.test/app@sha256:" in page


def test_failed_repo_says_since_when(tmp_path):
    from scratchd.models import Commit, Trigger
    from scratchd.store import StateDir, Store

    store = Store(StateDir(tmp_path / "s").db)
    for i, result in enumerate(("passed", "failed", "error")):
        b = store.enqueue([Commit("app", "refs/heads/main", f"{i:040x}")], Trigger.PUSH)[0]
        store.claim_next(max_running=1)
        store.set_commit_facts(b.id, author=f"author{i}")
        if result == "passed":
            store.mark_passed(b.id)
        else:
            getattr(store, f"mark_{result}")(b.id, "boom")
    store.close()
    proc = WebProcess(write_config(tmp_path / "c.toml", tmp_path / "s")).start()
    try:
        text = get(proc.url, "/").text
        assert 'broken since <a href="/builds/2">#2</a>' in text and "author1" in text
    finally:
        proc.stop()


def test_api_builds_matches_the_cli_json(web, seeded):
    config, _, _ = seeded
    cli = subprocess.run(
        [sys.executable, "-m", "scratchd", "builds", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    api = json.loads(get(web.url, "/api/builds").body)
    assert api["builds"] == json.loads(cli.stdout)
    status = json.loads(get(web.url, "/api/status").body)
    assert [b["id"] for b in status["running"]] == [api["builds"][0]["id"]]
    assert status["alive"] is False and status["queued"] == []


def test_builds_page_cursor_and_filters(web, seeded):
    _, _, ids = seeded
    first = json.loads(get(web.url, "/api/builds?limit=2").body)
    assert [b["id"] for b in first["builds"]] == [ids[3], ids[2]] and first["next"] == ids[2]
    rest = json.loads(get(web.url, f"/api/builds?limit=2&before={first['next']}").body)
    assert [b["id"] for b in rest["builds"]] == [ids[1], ids[0]] and rest["next"] is None
    failed = json.loads(get(web.url, "/api/builds?status=failed").body)
    assert [b["id"] for b in failed["builds"]] == [ids[1]]
    html = get(web.url, "/builds?limit=2").text
    assert f"before={ids[2]}" in html
    assert json.loads(get(web.url, "/api/builds?branch=nope").body)["builds"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/builds/999", 404),
        ("/builds/abc", 404),
        ("/builds/99999999999999999999999999", 404),
        ("/api/builds/999", 404),
        ("/builds/999/log.txt", 404),
        ("/builds?before=abc", 400),
        ("/builds?limit=" + "9" * 5000, 400),
        ("/builds?status=bogus", 400),
        ("/builds?repo=" + "x" * 10000, 400),
        ("/builds?branch=%00", 400),
        ("/api/builds?trigger=nope", 400),
        ("/api/builds/1/log?start=-5", 400),
        ("/api/builds/1/log/events?after=xyz", 400),
        ("/repos/..%2F..%2Fetc%2Fpasswd", 404),
        ("/repos/../etc/passwd", 404),
        ("/repos/nope", 404),
        ("/badge/..%2Fscratchd.db.svg", 404),
        ("/static/..%2F__init__.py", 404),
        ("/static/../app.py", 404),
        ("/static/%2e%2e/state.py", 404),
        ("/nothing/here", 404),
    ],
)
def test_bad_input_gets_a_clear_error_page(web, path, status):
    r = get(web.url, path)
    assert r.status == status, (path, r.status, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text
    if len(path) > 8000:  # refused by the HTTP parser before any handler: its own short text
        assert "Got more than 8190 bytes" in r.text
    elif not path.startswith("/api"):
        assert f"<h1>{status} " in r.text


def test_huge_header_is_refused_cleanly(web):
    r = get(web.url, "/", headers={"X-Big": "y" * 20000})
    assert r.status in (400, 431) and "Traceback" not in r.text


def test_missing_state_directory_is_a_503_not_a_traceback(tmp_path):
    proc = WebProcess(write_config(tmp_path / "c.toml", tmp_path / "missing")).start()
    try:
        for path in ("/", "/builds", "/builds/1", "/repos/app", "/api/status", "/healthz"):
            r = get(proc.url, path)
            assert r.status == 503, (path, r.status)
            assert "state database is unavailable" in r.text and str(tmp_path) not in r.text
        badge = get(proc.url, "/badge/app.svg")
        assert badge.status == 503
    finally:
        assert "Traceback" not in proc.stop()


def test_badges(web):
    r = get(web.url, "/badge/app.svg")
    assert r.status == 200 and r.headers["content-type"].startswith("image/svg+xml")
    assert "app: passed" in r.text
    assert "app main: passed" in get(web.url, "/badge/app/main.svg").text
    assert "unknown" in get(web.url, "/badge/app/nope.svg").text


def test_raw_and_download(web, seeded):
    _, _, ids = seeded
    raw = get(web.url, f"/builds/{ids[0]}/log.txt")  # a gzip'd log, served as text
    assert raw.status == 200 and raw.text.count("\n") == 30 and "line 30" in raw.text
    assert "attachment" not in raw.headers.get("content-disposition", "")
    down = get(web.url, f"/builds/{ids[3]}/log.txt?download=1")  # still plain
    assert f'filename="build-{ids[3]}.log"' in down.headers["content-disposition"]


def test_log_ranges_and_tail(web, seeded):
    _, _, ids = seeded
    tail = json.loads(get(web.url, f"/api/builds/{ids[0]}/log").body)
    assert tail["first"] == 1 and tail["total"] == 30 and len(tail["lines"]) == 30
    piece = json.loads(get(web.url, f"/builds/{ids[0]}/log.json?start=10&end=12").body)
    assert piece["first"] == 10 and [ln.split()[-1] for ln in piece["lines"]] == ["10", "11", "12"]


def test_bearer_token_guards_api_and_metrics_only(seeded, tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    proc = WebProcess(seeded[0], extra=("--token-file", str(token))).start()
    try:
        for path in ("/api/status", "/api/builds", "/metrics", "/api/events"):
            r = get(proc.url, path)
            assert r.status == 401 and r.headers["www-authenticate"] == "Bearer"
            assert get(proc.url, path, {"Authorization": "Bearer wrong"}).status == 401
        ok = get(proc.url, "/api/builds", {"Authorization": "Bearer s3cret-token"})
        assert ok.status == 200
        assert get(proc.url, "/").status == 200  # the pages themselves are read-only views
        assert "s3cret" not in get(proc.url, "/").text
    finally:
        output = proc.stop()
    assert "s3cret" not in output


def test_healthz(web):
    r = get(web.url, "/healthz")
    assert (r.status, r.text) == (200, "ok\n")
