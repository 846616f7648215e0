"""Shared polling for SSE clients: the cost of a look does not grow with the clients.

Fifty open tabs must not mean fifty database polls every quarter second on
the machine that runs the builds. :class:`ChangeHub` polls the change feed
once per interval while anyone listens and wakes every listener; a client
that resumes from further back than the hub remembers reads the database
itself, once. :class:`StatusCache` answers "has build N finished?" for all
log streams, of every build being followed, from one query per interval.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time

from scratchd.store.records import BuildRecord
from scratchd.web.state import ReadOnlyState

REMEMBER = 2000  # change events kept in memory for catching-up clients


class ChangeHub:
    def __init__(self, state: ReadOnlyState, poll: float) -> None:
        self.state, self.poll = state, poll
        self.recent: collections.deque = collections.deque(maxlen=REMEMBER)
        self.seq: int | None = None
        self.listeners = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def head(self, fresh: bool = False) -> int:
        """The newest event's sequence number; ``fresh`` reads it now (a new client's start)."""
        if fresh:
            return await asyncio.to_thread(self.state.last_event)
        if self.seq is None:
            self.seq = await asyncio.to_thread(self.state.last_event)
        return self.seq

    @contextlib.asynccontextmanager
    async def listening(self):
        self.listeners += 1
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            self.listeners -= 1

    async def _run(self) -> None:
        while self.listeners > 0:
            with contextlib.suppress(Exception):  # a failed look is retried next interval
                start = await self.head()
                rows = await asyncio.to_thread(self.state.events_after, start)
                if rows:
                    self.recent.extend(rows)
                    self.seq = rows[-1]["seq"]
                    self._changed.set()
                    self._changed = asyncio.Event()
            await asyncio.sleep(self.poll)

    async def after(self, seq: int, timeout: float) -> list:
        """Events after ``seq``; waits up to ``timeout`` for one when there is none yet."""
        rows = await self._known_after(seq)
        if rows:
            return rows
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)
        return await self._known_after(seq)

    async def _known_after(self, seq: int) -> list:
        if self.recent and seq < self.recent[0]["seq"] - 1:
            return await asyncio.to_thread(self.state.events_after, seq)
        if not self.recent and self.seq is not None and seq < self.seq:
            return await asyncio.to_thread(self.state.events_after, seq)
        return [r for r in self.recent if r["seq"] > seq]


class StatusCache:
    """``build(id)``: one query per ``ttl`` seconds for all the builds being followed.

    Twenty-five tabs following twenty-five builds used to be a hundred
    queries a second, each in a worker thread, beside the daemon on the same
    cores; now the first stream whose answer is stale reads every build
    asked for recently in one ``id IN (...)`` query, and the others find it.
    """

    RECENT = 10  # intervals a build is still refreshed after its last question
    LIMIT = 500  # builds refreshed by one query at most (SQLite's variable limit is far off)

    def __init__(self, state: ReadOnlyState, ttl: float) -> None:
        self.state, self.ttl = state, ttl
        self._cache: dict[int, tuple[float, BuildRecord | None]] = {}
        self._asked: dict[int, float] = {}
        self._lock = asyncio.Lock()
        self.queries = 0  # how many reads it made (the tests count them)

    async def build(self, build_id: int) -> BuildRecord | None:
        self._asked[build_id] = time.monotonic()
        await asyncio.sleep(0)  # streams woken together all ask before the one read
        async with self._lock:
            hit = self._cache.get(build_id)
            if hit is not None and time.monotonic() - hit[0] < self.ttl:
                return hit[1]
            now = time.monotonic()
            horizon = now - self.RECENT * self.ttl
            self._asked = {i: t for i, t in self._asked.items() if t >= horizon}
            ids = sorted(self._asked, key=self._asked.__getitem__, reverse=True)[: self.LIMIT]
            found = await asyncio.to_thread(self.state.builds_by_id, ids)
            self.queries += 1
            self._cache = {i: (now, found.get(i)) for i in ids}
            return self._cache[build_id][1]
