"""SSE framing, keep-alive and resume, over HTTP against real servers and real log files."""

from __future__ import annotations

import json
import threading
import time

from scratchd.models import Commit, Trigger
from scratchd.store import BuildLog, StateDir, Store
from scratchd.web import WebSettings
from scratchd.web.sse import frame
from tests.web.support import SSE, InProcessWeb, WebProcess, get, write_config


def running_build(state_dir):
    state = StateDir(state_dir)
    store = Store(state.db)
    build = store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)[0]
    store.claim_next(max_running=1)
    return store, build, BuildLog(state.log_path("app", build.id))


def test_frame_splits_multiline_data_and_always_carries_the_id():
    assert frame("a\nb", event_id=7, event="end") == b"event: end\nid: 7\ndata: a\ndata: b\n\n"
    assert frame("x\r", event_id=1) == b"id: 1\ndata: x\n\n"


def test_log_stream_headers_ids_resume_and_end(tmp_path):
    store, build, log = running_build(tmp_path / "state")
    for n in range(1, 6):
        log.line(f"line {n}", pipeline="build", step="s")
    proc = WebProcess(write_config(tmp_path / "c.toml", tmp_path / "state")).start()
    try:
        path = f"/builds/{build.id}/log/events"
        first = SSE(proc.url, path)
        assert first.headers["content-type"].startswith("text/event-stream")
        assert first.headers["x-accel-buffering"] == "no"
        assert first.headers["cache-control"] == "no-cache"
        got = [first.next() for _ in range(3)]
        assert first.retry == 1000
        assert [e.id for e in got] == ["1", "2", "3"]
        assert got[0].data[0].endswith("build/s: line 1")
        first.close()
        # A reconnect sends Last-Event-ID, which wins over ?after=.
        again = SSE(proc.url, path + "?after=1", {"Last-Event-ID": "3"})
        log.line("line 6", pipeline="build", step="s")
        events = [again.next() for _ in range(3)]
        assert [e.id for e in events] == ["4", "5", "6"]
        store.mark_passed(build.id)
        log.line("build passed", "info")
        log.finish()  # compressed, as the daemon does at the end
        last = again.next()
        assert (last.id, last.data[0][-12:]) == ("7", "build passed")
        end = again.next()
        assert (end.event, end.id, end.data) == ("end", "7", ["passed"])
        assert again.next() is None  # the server closed the stream
        # Resuming a finished build's stream reads the gzip'd log.
        late = SSE(proc.url, path, {"Last-Event-ID": "5"})
        assert [late.next().id for _ in range(2)] == ["6", "7"]
        assert late.next().event == "end"
    finally:
        assert "Traceback" not in proc.stop()


def test_resume_across_a_killed_web_process_has_no_gap_or_duplicate(tmp_path):
    store, build, log = running_build(tmp_path / "state")
    config = write_config(tmp_path / "c.toml", tmp_path / "state")
    proc = WebProcess(config).start()
    seen: list[int] = []
    stop = threading.Event()

    def writer():
        n = 0
        while not stop.is_set():
            n += 1
            log.line(f"line {n}", pipeline="build", step="s")
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        client = SSE(proc.url, f"/builds/{build.id}/log/events")
        while len(seen) < 50:
            seen.append(int(client.next().id))
        proc.kill()  # mid-build, mid-stream
        client.close()
        proc = WebProcess(config, port=proc.port).start()
        client = SSE(proc.url, f"/builds/{build.id}/log/events", {"Last-Event-ID": str(seen[-1])})
        while len(seen) < 150:
            seen.append(int(client.next().id))
        stop.set()
        thread.join()
        store.mark_passed(build.id)
        log.finish()
        while (event := client.next()) is not None and event.event != "end":
            seen.append(int(event.id))
        assert seen == list(range(1, len(seen) + 1))  # every line once, in order
        total = len(get(proc.url, f"/builds/{build.id}/log.txt").text.splitlines())
        assert len(seen) == total
    finally:
        stop.set()
        thread.join()
        proc.stop()


def test_keep_alive_comment_while_idle_and_change_feed_resume(tmp_path):
    store, build, log = running_build(tmp_path / "state")
    web = InProcessWeb(WebSettings(state_dir=tmp_path / "state", keepalive=0.3, poll=0.05))
    try:
        idle = SSE(web.url, f"/builds/{build.id}/log/events")
        time.sleep(1.0)
        log.line("after a pause")
        event = idle.next()
        assert event.id == "1" and "keep-alive" in idle.comments
        assert idle.raw.index(": keep-alive") < idle.raw.index("id: 1")
        idle.close()

        feed = SSE(web.url, "/api/events")  # no Last-Event-ID: only what happens from now
        store.mark_failed(build.id, "boom")
        changed = feed.next()
        data = json.loads(changed.data[0])
        assert changed.event == "build" and data["status"] == "failed"
        assert int(changed.id) == data["seq"] and data["build_id"] == build.id
        second = store.enqueue([Commit("app", "refs/heads/main", "b" * 40)], Trigger.MANUAL)[0]
        queued = feed.next()
        feed.close()
        # Reconnecting with the first event's id replays exactly the second one.
        resumed = SSE(web.url, "/events", {"Last-Event-ID": changed.id})
        again = resumed.next()
        assert again.id == queued.id and json.loads(again.data[0])["build_id"] == second.id
        resumed.close()
    finally:
        web.close()
        log.close()
        store.close()
