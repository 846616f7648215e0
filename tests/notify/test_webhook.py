"""Signed webhooks to a real HTTP receiver, judged by an independent verifier."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import time

import pytest
from standardwebhooks.webhooks import Webhook

from scratchd.notify import Sender
from tests.notify.conftest import SECRET, build, config_from, drain


def spec_verify(secret: str, headers: dict, body: bytes) -> None:
    """The Standard Webhooks check, written from the spec (not from our code)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    versions = dict(s.split(",", 1) for s in headers["webhook-signature"].split())
    assert hmac.compare_digest(versions["v1"], expected)
    assert abs(time.time() - int(headers["webhook-timestamp"])) < 300


def hook(url, secret_file, extra="") -> str:
    return (
        '[notify]\nweb_url = "https://ci.example.com"\nretry_delay = "50ms"\n'
        'retry_max_delay = "200ms"\n\n[notify.sink.hook]\ntype = "webhook"\n'
        f'url = "{url}"\nsecret_file = "{secret_file}"\n{extra}'
    )


def sender_for(store, config, **kw) -> Sender:
    facts = {"subject": "Fix the frobnicator", "author": "Ada", "email": "ada@example.com"}
    return Sender(store, lambda: config, commit_facts=lambda repo, sha: facts, **kw)


def test_every_event_is_signed_and_carries_its_fields(tmp_path, store, receiver, secret_file):
    config = config_from(tmp_path, hook(receiver.url, secret_file))
    ok = build(store, 1, passed=True)
    broken = build(store, 2, passed=False)
    fixed = build(store, 3, passed=True)
    sender = sender_for(store, config)
    drain(sender, lambda: len(receiver.accepted) >= 11)

    seen = receiver.wait_for(11)
    verifier = Webhook(SECRET)
    for request in seen:
        verifier.verify(request["body"], request["headers"])  # raises when wrong
        spec_verify(SECRET, request["headers"], request["body"])
        assert request["headers"]["content-type"] == "application/json"
        assert request["headers"]["webhook-id"].startswith("msg_")
    types = [(r["json"]["data"]["id"], r["json"]["type"]) for r in seen]
    assert types == [
        (ok, "build.queued"),
        (ok, "build.started"),
        (ok, "build.finished"),
        (broken, "build.queued"),
        (broken, "build.started"),
        (broken, "build.finished"),
        (broken, "build.broken"),
        (fixed, "build.queued"),
        (fixed, "build.started"),
        (fixed, "build.finished"),
        (fixed, "build.fixed"),
    ]
    assert len({r["headers"]["webhook-id"] for r in seen}) == 11
    finished = next(r["json"] for r in seen if r["json"]["type"] == "build.broken")
    data = finished["data"]
    assert finished["timestamp"].endswith("Z")
    assert data["repo"] == "app" and data["branch"] == "main" and data["ref"] == "refs/heads/main"
    assert data["commit"] == {
        "sha": f"{2:040x}",
        "subject": "Fix the frobnicator",
        "author": "Ada",
        "email": "ada@example.com",
    }
    assert data["status"] == data["result"] == "failed"
    assert data["failed_step"] == "compile" and data["trigger"] == "push"
    assert data["number"] == data["id"] == broken
    assert data["duration"] is not None and data["duration"] >= 0
    assert data["started_at"] and data["finished_at"] and data["queued_at"]
    assert data["url"] == f"https://ci.example.com/builds/{broken}"
    assert data["previous"]["status"] == "passed" and data["previous"]["id"] == ok
    passed = next(r["json"]["data"] for r in seen if r["json"]["type"] == "build.fixed")
    assert passed["images"] == [f"sha256:{3:064x}"] and passed["result"] == "passed"
    started = next(r["json"]["data"] for r in seen if r["json"]["type"] == "build.started")
    assert started["status"] == "running" and started["result"] is None


def test_filter_on_broken_and_fixed_only(tmp_path, store, receiver, secret_file):
    config = config_from(tmp_path, hook(receiver.url, secret_file, 'on = ["broken", "fixed"]'))
    build(store, 1, passed=True)
    build(store, 2, passed=False)
    build(store, 3, passed=True)
    sender = sender_for(store, config)
    drain(sender, lambda: len(receiver.accepted) >= 2)
    sender.run_once()
    assert [r["json"]["type"] for r in receiver.accepted] == ["build.broken", "build.fixed"]


@pytest.mark.parametrize("failure", [500, "drop"])
def test_retried_after_500_and_dropped_connection_then_delivered_once(
    tmp_path, store, receiver, secret_file, failure
):
    config = config_from(tmp_path, hook(receiver.url, secret_file, 'on = ["finished"]'))
    receiver.script = [failure, failure]
    build_id = build(store, 1, passed=True)
    sender = sender_for(store, config)
    drain(sender, lambda: receiver.accepted)
    for _ in range(5):
        sender.run_once()
    assert len(receiver.requests) == 3 and len(receiver.accepted) == 1
    ids = {r["headers"]["webhook-id"] for r in receiver.requests}
    assert len(ids) == 1  # the same id on every retry: receivers can de-duplicate
    (event,) = [e for e in store.events(build_id=build_id) if e.type == "build.finished"]
    (row,) = store.deliveries(event.id)
    assert row["attempts"] == 3 and row["delivered_at"] and row["last_error"] is None


def test_gives_up_with_a_logged_error_and_no_secret_anywhere(
    tmp_path, store, receiver, secret_file, caplog
):
    token = "tok3n-that-must-not-leak"
    url = f"{receiver.url}?token={token}"
    config = config_from(
        tmp_path,
        hook(url, secret_file, 'on = ["finished"]').replace(
            'retry_max_delay = "200ms"', 'retry_max_delay = "200ms"\ngive_up_after = "1s"'
        ),
    )
    receiver.script = [500] * 1000
    build_id = build(store, 1, passed=True)
    sender = sender_for(store, config)
    (event,) = [e for e in store.events(build_id=build_id) if e.type == "build.finished"]
    with caplog.at_level(logging.INFO):
        drain(sender, lambda: any(d["gave_up_at"] for d in store.deliveries(event.id)), timeout=10)
    (row,) = store.deliveries(event.id)
    assert row["delivered_at"] is None and row["attempts"] >= 3
    assert "HTTP 500" in row["last_error"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "gave up notifying hook of build.finished" in errors[0].message
    receiver.stop()
    sender.run_once()  # given up: not attempted again, even with the receiver gone
    files = b"".join(p.read_bytes() for p in store.path.parent.glob(store.path.name + "*"))
    everything = caplog.text + files.decode(errors="replace")
    assert token not in everything and SECRET not in everything
    assert SECRET.removeprefix("whsec_") not in everything


def test_unreachable_sink_holds_its_other_events(tmp_path, store, receiver, secret_file):
    config = config_from(tmp_path, hook(receiver.url, secret_file))
    receiver.stop()
    for n in range(5):
        build(store, n, passed=True)
    sender = sender_for(store, config)
    assert sender.run_once() == 1  # one connection refused; the other 14 wait for its retry
    receiver.start()
    drain(sender, lambda: len(receiver.accepted) >= 15)
    ids = [r["headers"]["webhook-id"] for r in receiver.accepted]
    assert len(ids) == len(set(ids)) == 15


def test_backoff_doubles_up_to_the_ceiling_for_any_attempt_count(tmp_path):
    from scratchd.notify.sender import backoff

    config = config_from(tmp_path, '[notify]\nretry_delay = "1s"\nretry_max_delay = "1m"\n')
    delays = [backoff(config.notify, n) for n in (0, 1, 2, 5, 6, 100, 5000)]
    assert delays == [1, 2, 4, 32, 60, 60, 60]  # a receiver down for days: no overflow


def test_a_bug_in_a_sink_does_not_stop_the_sender(tmp_path, store, receiver, secret_file, caplog):
    config = config_from(tmp_path, hook(receiver.url, secret_file, 'on = ["finished"]'))
    build(store, 1, passed=True)
    calls = []

    def flaky(sink_config):
        from scratchd.notify import make_sink

        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return make_sink(sink_config)

    sender = sender_for(store, config, make_sink=flaky).start()
    try:
        receiver.wait_for(1, timeout=20)
    finally:
        sender.stop()
    assert "unexpected error" in caplog.text


def test_an_idle_sender_sleeps_until_woken(tmp_path, store, receiver, secret_file):
    """No timer polls the outbox: the daemon wakes the sender when builds change."""
    config = config_from(tmp_path, hook(receiver.url, secret_file))
    looks: list[int] = []
    real = store.next_delivery_at
    store.next_delivery_at = lambda: looks.append(1) or real()
    sender = sender_for(store, config).start()
    try:
        time.sleep(0.3)
        asked = len(looks)
        time.sleep(1.2)  # the old sender looked every 0.5 s
        assert len(looks) == asked
        build(store, 1, passed=True)
        sender.wake()  # what the daemon's loop does after a build changed
        receiver.wait_for(3)
    finally:
        sender.stop()
