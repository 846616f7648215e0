"""The SSE streams' shared reads: their cost does not grow with the number of clients."""

from __future__ import annotations

import asyncio

from scratchd.models import Commit, Trigger
from scratchd.store import StateDir, Store
from scratchd.web.hub import StatusCache
from scratchd.web.state import ReadOnlyState


def test_streams_of_many_builds_share_one_status_query_per_interval(tmp_path):
    state = StateDir(tmp_path / "state")
    store = Store(state.db)
    commits = [Commit("app", f"refs/heads/b{i}", f"{i:040x}") for i in range(25)]
    builds = store.enqueue(commits, Trigger.PUSH)
    ids = [b.id for b in builds]
    cache = StatusCache(ReadOnlyState(state.root), ttl=0.2)

    async def look() -> list:
        return await asyncio.gather(*(cache.build(i) for i in ids))

    async def scenario() -> None:
        first = await look()  # 25 streams ask at once: one query answers them all
        assert [b.id for b in first] == ids and cache.queries == 1
        await look()
        assert cache.queries == 1  # within the interval: nothing read again
        store.claim_next(max_running=1)
        await asyncio.sleep(0.25)
        again = await look()
        assert cache.queries == 2
        assert str(again[0].status) == "running"  # a change shows after one interval
        assert await cache.build(999) is None and cache.queries == 3  # unknown: None

    asyncio.run(scenario())
    store.close()
