"""Server-sent events: the change feed and the per-build log stream.

Framing follows the HTML spec: every event carries an ``id:`` (a change
sequence number, or a log line number), so a browser's automatic reconnect
sends ``Last-Event-ID`` and the stream resumes exactly after it, even across
a restart of the web process (the ids come from the database and the log
file, never from memory). A ``: keep-alive`` comment every ~15 s keeps
proxies from closing an idle stream, and ``X-Accel-Buffering: no`` tells
nginx not to buffer it. Reads run in a worker thread so a slow disk never
stalls other clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable

from aiohttp import web

from scratchd.web.hub import ChangeHub, StatusCache
from scratchd.web.logs import LogFollower

#: What a reconnecting browser waits before trying again (ms).
RETRY_MS = 1000
#: How long after a build finished its plain log may still be written to (seconds).
END_GRACE = 3.0


def frame(data: str, *, event_id: int | str | None = None, event: str | None = None) -> bytes:
    """One event; a ``data`` with newlines becomes several ``data:`` lines, as the spec says."""
    out = []
    if event is not None:
        out.append(f"event: {event}")
    if event_id is not None:
        out.append(f"id: {event_id}")
    out += [f"data: {part}" for part in data.replace("\r", "").split("\n")]
    return ("\n".join(out) + "\n\n").encode()


def resume_point(request: web.Request, default: int) -> int:
    """``Last-Event-ID`` (a reconnect) wins over ``?after=`` (the page's first connect)."""
    for raw in (request.headers.get("Last-Event-ID"), request.query.get("after")):
        if raw is not None and raw.strip().isdigit() and len(raw.strip()) <= 18:
            return int(raw.strip())
        if raw is not None:
            raise web.HTTPBadRequest(text="Last-Event-ID / after must be a line or event number")
    return default


async def open_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    await response.write(f"retry: {RETRY_MS}\n\n".encode())
    return response


class Ticker:
    """Says when a keep-alive comment is due."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval, self._clock = interval, clock
        self._last = clock()

    def due(self) -> bool:
        if self._clock() - self._last >= self.interval:
            self._last = self._clock()
            return True
        return False

    def reset(self) -> None:
        self._last = self._clock()


async def change_feed(request: web.Request, hub: ChangeHub, settings) -> web.StreamResponse:
    """Every build status change (queued, running, passed ...) as ``event: build``."""
    seq = resume_point(request, default=-1)
    async with hub.listening():
        if seq < 0:  # taken before the headers go out: a client sees every change after them
            seq = await hub.head(fresh=True)
        response = await open_stream(request)
        with contextlib.suppress(ConnectionResetError):  # the client went away: nothing to log
            await _feed(response, hub, settings, seq)
    return response


async def _feed(response, hub: ChangeHub, settings, seq: int) -> None:
    while True:
        rows = await hub.after(seq, settings.keepalive)
        for row in rows:
            seq = row["seq"]
            payload = {k: row[k] for k in ("seq", "build_id", "status", "at", "repo", "branch")}
            await response.write(frame(json.dumps(payload), event_id=seq, event="build"))
        if not rows:
            await response.write(b": keep-alive\n\n")


async def log_stream(
    request: web.Request, builds: StatusCache, build_id: int, path, settings
) -> web.StreamResponse:
    """The build's log lines (``id:`` = line number), then ``event: end`` once it finished."""
    follower = LogFollower(path, resume_point(request, default=0))
    response = await open_stream(request)
    try:
        with contextlib.suppress(ConnectionResetError):  # the client went away
            await _follow(response, builds, build_id, path, follower, settings)
    finally:
        follower.close()
    return response


async def _follow(response, builds, build_id: int, path, follower: LogFollower, settings) -> None:
    ticker = Ticker(settings.keepalive)
    finished_seen: float | None = None
    first = True
    while True:
        build = await builds.build(build_id)
        if finished_seen is None and (build is None or build.status.finished):
            finished_seen = time.monotonic()
        # The daemon records the status, then writes its last line and compresses the
        # log: the end is when the plain file is gone (or after a grace period).
        finished = finished_seen is not None and (
            not path.exists() or time.monotonic() - finished_seen > END_GRACE
        )
        # The first read may skip a long way (a resume): a worker thread. Later ones read
        # only what was appended since, cheap enough for the loop itself.
        lines = await asyncio.to_thread(follower.poll) if first else follower.poll()
        first = False
        for number, text in lines:
            await response.write(frame(text, event_id=number))
        if lines:
            ticker.reset()
        elif finished:
            status = build.status.value if build else "gone"
            await response.write(frame(status, event_id=follower.line, event="end"))
            return
        elif ticker.due():
            await response.write(b": keep-alive\n\n")
        await asyncio.sleep(settings.poll)
