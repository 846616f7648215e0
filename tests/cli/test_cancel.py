"""scratchd cancel: queued builds stop at once, running ones are flagged for the daemon."""

from __future__ import annotations

from scratchd.models import BuildStatus, Commit, Trigger
from tests.cli.state_env import make_env


def test_cancel_queued_running_and_finished(tmp_path, capsys):
    env = make_env(tmp_path)
    store = env.store()
    store.enqueue([Commit("app", "refs/heads/main", "a" * 40)], Trigger.PUSH)
    store.enqueue([Commit("app", "refs/heads/dev", "b" * 40)], Trigger.PUSH)
    store.claim_next(max_running=1)  # build 1 runs, build 2 waits

    code, out, _ = env.cli(capsys, "cancel", "2")
    assert (code, out.strip()) == (0, "build 2: cancelled")
    assert store.get(2).status == BuildStatus.CANCELLED

    code, out, _ = env.cli(capsys, "cancel", "1")
    assert code == 0 and "cancel requested" in out
    assert [b.id for b in store.cancel_requests()] == [1]  # what the daemon polls
    store.mark_cancelled(1)
    assert store.get(1).message == "cancelled by user"

    code, out, _ = env.cli(capsys, "cancel", "1")
    assert code == 1 and "already cancelled" in out


def test_unknown_build(tmp_path, capsys):
    env = make_env(tmp_path)
    env.store().close()
    code, _, err = env.cli(capsys, "cancel", "9")
    assert code == 2 and "no build with id 9" in err
