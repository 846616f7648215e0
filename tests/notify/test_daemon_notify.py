"""A real daemon notifies a real receiver: kill -9 before delivery, restarts, bursts."""

from __future__ import annotations

import collections
import time

from tests.git.repos import WorkRepo
from tests.notify.conftest import SECRET
from tests.notify.receiver import Receiver
from tests.support.daemon import QUICK_YML, Daemon, repo_table


class NotifyingDaemon(Daemon):
    """The test daemon plus a ``[notify]`` table with one webhook sink."""

    notify_toml = ""

    def write_config(self, repos, **daemon):
        super().write_config(repos, **daemon)
        with self.config.open("a") as f:
            f.write("\n" + self.notify_toml)


def notifying_daemon(tmp_path, repos, url, secret_file, **daemon) -> NotifyingDaemon:
    NotifyingDaemon.notify_toml = (
        '[notify]\nretry_delay = "100ms"\nretry_max_delay = "400ms"\n\n'
        f'[notify.sink.hook]\ntype = "webhook"\nurl = "{url}"\nsecret_file = "{secret_file}"\n'
    )
    return NotifyingDaemon(tmp_path / "d", repos, **daemon)


def project(path) -> WorkRepo:
    repo = WorkRepo(path)
    repo.commit("first", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    return repo


def attempted(d: Daemon, build_id: int) -> bool:
    """The finished event is routed and undelivered, and the sender has tried the sink."""
    store = d.store()
    rows = {event.type: store.deliveries(event.id) for event in store.events(build_id=build_id)}
    tried = any(r["attempts"] for found in rows.values() for r in found)
    pending = rows.get("build.finished") and not rows["build.finished"][0]["delivered_at"]
    return bool(tried and pending)


def received(receiver: Receiver) -> collections.Counter:
    return collections.Counter(r["headers"]["webhook-id"] for r in receiver.accepted)


def expected_ids(d: Daemon) -> set[str]:
    return {e.event_id for b in d.builds() for e in d.store().events(build_id=b.id)}


def test_kill9_between_build_end_and_delivery_delivers_exactly_once(tmp_path, secret_file):
    receiver = Receiver().start()
    receiver.stop()  # down: the port is known, nothing answers
    repo = project(tmp_path / "app")
    token = "s3cret-hook-token"
    url = f"{receiver.url}?token={token}"
    d = notifying_daemon(tmp_path, [repo_table("app", repo.path)], url, secret_file)
    try:
        d.start()
        build = d.wait_status(repo.head(), "passed")
        d.wait(lambda: attempted(d, build.id), what="a failed delivery attempt")
        d.kill9()  # the build is finished, its events are not delivered

        receiver.start()
        d.start()
        d.wait(lambda: set(received(receiver)) >= expected_ids(d), what="every event delivered")
        types = sorted(r["json"]["type"] for r in receiver.accepted)
        assert types == ["build.finished", "build.queued", "build.started"]

        # Delivered and recorded: a second kill -9 and restart sends nothing again.
        time.sleep(1)
        d.kill9()
        d.start()
        second = repo.commit("second")
        d.wait_status(second, "passed")
        d.wait(lambda: set(received(receiver)) >= expected_ids(d), what="the new build's events")
        time.sleep(1.5)  # time for any duplicate to show up
        counts = received(receiver)
        assert set(counts) == expected_ids(d) and len(counts) == 6
        assert max(counts.values()) == 1, counts
        assert all(r["path"] == f"/hook?token={token}" for r in receiver.accepted)
        # The URL's token and the signing secret stay out of the daemon's log and database.
        assert "cannot reach the receiver" in d.log()
        state = b"".join(p.read_bytes() for p in d.state.root.glob("scratchd.db*"))
        for secret in (token, SECRET, SECRET.removeprefix("whsec_")):
            assert secret not in d.log() and secret.encode() not in state
    finally:
        d.close()
        receiver.stop()


def test_burst_with_the_receiver_down_then_every_event_arrives(tmp_path, secret_file):
    receiver = Receiver().start()
    receiver.stop()
    repos = [project(tmp_path / f"r{i}") for i in range(10)]
    tables = [repo_table(f"r{i}", r.path, build_every_commit=True) for i, r in enumerate(repos)]
    d = notifying_daemon(tmp_path, tables, receiver.url, secret_file, max_concurrent_builds=4)
    try:
        d.start()
        # The first scan queues each branch tip; commits made before it would be part of it.
        d.wait(lambda: len(d.builds()) >= 10, what="the 10 first builds queued")
        for _ in range(9):
            for r in repos:
                r.commit()
        heads = [r.head() for r in repos]
        d.wait(
            lambda: len([b for b in d.builds() if b.status == "passed"]) >= 100,
            timeout=600,
            what="100 builds passed",
        )
        assert {h for h in heads} <= {b.sha for b in d.builds() if b.status == "passed"}
        assert receiver.accepted == []
        receiver.start()
        started = time.monotonic()
        d.wait(lambda: set(received(receiver)) >= expected_ids(d), timeout=120, what="all events")
        took = time.monotonic() - started
        counts = received(receiver)
        assert len(counts) == len(expected_ids(d)) >= 300
        assert max(counts.values()) == 1
        print(f"{len(counts)} events delivered {took:.1f}s after the receiver came back")
    finally:
        d.close()
        receiver.stop()
