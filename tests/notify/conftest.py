"""A real store, a config parsed from TOML text, a sender driven round by round."""

from __future__ import annotations

import base64
import time

import pytest

from scratchd.config import parse_config
from scratchd.models import Commit, Trigger
from scratchd.notify import Sender
from scratchd.store import StateDir, Store
from tests.notify.receiver import Receiver

SECRET = "whsec_" + base64.b64encode(b"a signing key of 32 bytes, fixed").decode()


@pytest.fixture
def store(tmp_path):
    s = Store(StateDir(tmp_path / "state").db)
    yield s
    s.close()


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def secret_file(tmp_path):
    path = tmp_path / "webhook.secret"
    path.write_text(SECRET + "\n")
    path.chmod(0o600)
    return path


def config_from(tmp_path, notify_toml: str):
    text = f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n\n{notify_toml}'
    path = tmp_path / "scratchd.toml"
    path.write_text(text)
    return parse_config(text, path)


def build(store: Store, n: int, *, passed: bool, repo: str = "app") -> int:
    """One build through queued → running → passed/failed, as the daemon records it."""
    (record,) = store.enqueue([Commit(repo, "refs/heads/main", f"{n:040x}")], Trigger.PUSH)
    assert store.claim_next(max_running=10).id == record.id
    if passed:
        store.mark_passed(record.id, images=[f"sha256:{n:064x}"])
    else:
        store.mark_failed(record.id, "exit status 1", failed_step="compile")
    return record.id


def drain(sender: Sender, done, timeout: float = 20.0) -> None:
    """Run the sender's rounds until ``done()`` (the thread's loop, made deterministic)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "sender did not finish in time"
        sender.run_once()
        time.sleep(0.01)
