"""The pages in a real headless Chromium, on builds a real daemon runs from real commits."""

from __future__ import annotations

import time

import pytest

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401
from tests.web.browser import artefacts, chrome, console_errors, wait_for
from tests.web.support import WebProcess, get

TICKS = 120
SLOW_YML = f"""\
build:
  steps:
    - script:
        name: compile
        code: |
          printf '\\033[31mred alert\\033[0m and \\033[1;32mbold green\\033[0m\\n'
          i=1
          while [ $i -le {TICKS} ]; do echo "tick $i"; i=$((i+1)); sleep 0.1; done
    - script:
        name: test
        code: |
          echo "error: not really, just a marked line"
"""


@pytest.fixture
def driver():
    d = chrome()
    yield d
    d.quit()


@pytest.fixture
def site(tmp_path, make_daemon):
    repo = WorkRepo(tmp_path / "app")
    repo.commit("first", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    d = make_daemon([repo_table("app", repo.path)]).start()
    d.wait_status(repo.head(), "passed")
    web = WebProcess(d.config).start()
    yield d, repo, web
    web.stop()


def lines_shown(driver) -> list[int]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#log .line')).map(n => +n.id.slice(1))"
    )


def test_live_dashboard_log_follow_anchor_and_restart(site, driver, tmp_path):
    d, repo, web = site
    shots = artefacts(tmp_path)
    driver.get(web.url + "/")
    driver.execute_script("window.__noReload = 1")
    sha = repo.commit("slow build", files={"wercker.yml": SLOW_YML})
    build = d.wait_status(sha, "running")
    # The dashboard shows the running build without a reload (the change feed re-renders).
    wait_for(
        lambda: driver.find_elements(
            "css selector", f'.tile p.running a[href="/builds/{build.id}"]'
        ),
        what="the running build on the dashboard",
    )
    assert driver.execute_script("return window.__noReload") == 1
    driver.save_screenshot(str(shots / "dashboard.png"))

    driver.get(f"{web.url}/builds/{build.id}")
    driver.execute_script("window.__noReload = 1")
    counts = []
    for _ in range(4):
        counts.append(len(lines_shown(driver)))
        time.sleep(0.7)
    assert counts == sorted(counts) and counts[-1] > counts[0] > 0, counts  # grows while running
    assert driver.find_element("id", "follow").is_selected()
    red = wait_for(lambda: driver.find_elements("css selector", "#log .line span.fg1"))[0]
    assert red.text == "red alert" and red.value_of_css_property("color") == "rgba(238, 85, 85, 1)"
    bold = driver.find_element("css selector", "#log .line span.fg2.b")
    assert bold.text == "bold green"
    driver.save_screenshot(str(shots / "build-running.png"))
    # Scrolling up detaches follow mode.
    driver.execute_script("window.scrollTo(0, document.body.scrollHeight)")
    time.sleep(0.2)
    driver.execute_script("window.scrollTo(0, 0)")
    wait_for(lambda: not driver.find_element("id", "follow").is_selected(), 5, "follow detached")

    # Kill the web process mid-build; the page's stream resumes from its last line.
    seen_before = len(lines_shown(driver))
    web.kill()
    time.sleep(1.5)
    web.start()
    d.wait_status(sha, "passed", timeout=60)
    wait_for(lambda: driver.execute_script("return document.body.dataset.finished"), 30, "end")
    shown = lines_shown(driver)
    total = len(get(web.url, f"/builds/{build.id}/log.txt").text.splitlines())
    assert shown == list(range(1, total + 1)), (seen_before, shown[:5], total)
    assert seen_before < total
    assert driver.execute_script("return window.__noReload") == 1
    assert driver.find_elements("css selector", "#log .line.err")  # the "error:" line is marked

    # #L5 scrolls to and marks line 5; #L7-9 marks a range.
    driver.get(f"{web.url}/builds/{build.id}#L5")
    line5 = wait_for(lambda: driver.find_elements("css selector", "#L5.hl"), 10, "#L5 marked")[0]
    in_view = "const r = arguments[0].getBoundingClientRect(); return r.top >= 0"
    assert driver.execute_script(in_view + " && r.bottom <= innerHeight", line5)
    driver.get(f"{web.url}/builds/{build.id}#L7-9")
    wait_for(lambda: len(driver.find_elements("css selector", ".line.hl")) == 3, 10, "range")
    driver.save_screenshot(str(shots / "build-anchor.png"))


def test_no_console_errors_on_any_page(site, driver, tmp_path):
    d, _, web = site
    shots = artefacts(tmp_path)
    build = d.builds()[-1]
    pages = {
        "dashboard": "/",
        "builds": "/builds",
        "builds-filtered": "/builds?repo=app&status=passed",
        "repo": "/repos/app",
        "build": f"/builds/{build.id}",
        "not-found": "/builds/999999",
    }
    for name, path in pages.items():
        driver.get(web.url + path)
        wait_for(lambda: driver.execute_script("return document.readyState") == "complete")
        time.sleep(0.5)  # let the page's scripts connect their streams
        errors = [e for e in console_errors(driver) if "404" not in e or name != "not-found"]
        assert errors == [], (name, errors)
        driver.save_screenshot(str(shots / f"page-{name}.png"))
    driver.get(f"{web.url}/builds/{build.id}")
    driver.find_element("id", "show-ts").click()
    assert driver.find_element("css selector", "#L1 .ts").is_displayed()
    driver.find_element("css selector", ".stephead").click()  # collapse a step
    assert not driver.find_element("css selector", "#log .line[data-step]").is_displayed()
    assert console_errors(driver) == []


def test_a_big_running_log_shows_its_tail_in_chunks_and_keeps_following(tmp_path, driver):
    """5,000 lines: the page holds the last 2,000 in chunks, stays at the bottom as lines
    arrive, loads earlier ones on demand and reaches an anchor before its tail."""
    from scratchd.models import Commit, Trigger
    from scratchd.store import BuildLog, StateDir, Store
    from tests.web.support import write_config

    state = StateDir(tmp_path / "state")
    store = Store(state.db)
    build = store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)[0]
    store.claim_next(max_running=1)
    store.close()
    log = BuildLog(state.log_path("app", build.id))
    for n in range(1, 5001):
        log.line(f"\x1b[32mline {n}\x1b[0m", pipeline="build", step="big" if n > 10 else "a")
    web = WebProcess(write_config(tmp_path / "c.toml", state.root)).start()
    try:
        driver.get(f"{web.url}/builds/{build.id}")
        wait_for(lambda: lines_shown(driver), what="the tail")
        assert lines_shown(driver) == list(range(3001, 5001))
        chunks = driver.execute_script(
            "return Array.from(document.querySelectorAll('#log > .chunk'))"
            ".map(c => c.querySelectorAll('.line').length)"
        )
        assert chunks == [200] * 10
        at_bottom = "return document.documentElement.scrollHeight - scrollY - innerHeight < 50"
        assert driver.execute_script(at_bottom)
        for n in range(5001, 5301):  # arrive while the page follows
            log.line(f"line {n}", pipeline="build", step="big")
        wait_for(lambda: lines_shown(driver)[-1] == 5300, what="streamed lines")
        assert lines_shown(driver) == list(range(3001, 5301))
        assert driver.find_element("id", "follow").is_selected()
        wait_for(lambda: driver.execute_script(at_bottom), 5, "still at the bottom")
        driver.find_element("id", "load-earlier").click()
        wait_for(lambda: lines_shown(driver)[0] == 1001, what="earlier lines")
        assert lines_shown(driver) == list(range(1001, 5301))
        driver.get(f"{web.url}/builds/{build.id}#L7")
        line = wait_for(lambda: driver.find_elements("css selector", "#L7.hl"), 10, "#L7")[0]
        assert "line 7" in line.text
        assert console_errors(driver) == []
    finally:
        log.finish()
        web.stop()
