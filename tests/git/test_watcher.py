"""The watcher against real repositories changed by real ``git`` commands.

The poll interval is an hour unless a test is about polling, so a report
within the wait proves inotify delivered it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace

import pytest

from scratchd.git.watcher import Watcher, WatchSpec
from scratchd.models import Trigger
from tests.git.repos import WorkRepo, bare_repo, git

WAIT = 10.0


class RecordingSink:
    """Collects what the watcher reports; can refuse the next report once."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.reports: list[tuple[str, list, Trigger]] = []
        self.crons: list[tuple[str, dict]] = []
        self.refuse_next = False

    def refs_changed(self, repo, updates, trigger):
        with self.cond:
            if self.refuse_next:
                self.refuse_next = False
                raise RuntimeError("store unavailable")
            self.reports.append((repo, updates, trigger))
            self.cond.notify_all()

    def cron_fired(self, repo, refs):
        with self.cond:
            self.crons.append((repo, dict(refs)))
            self.cond.notify_all()

    def updates(self, repo=None):
        with self.cond:
            return [u for r, us, _ in self.reports if repo in (None, r) for u in us]

    def wait_for(self, predicate, timeout=WAIT):
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self), timeout), self.reports


@pytest.fixture
def sink():
    return RecordingSink()


@pytest.fixture
def make_watcher(sink):
    watchers = []

    def make(*specs, poll=3600.0, inotify=True, known=None):
        w = Watcher(sink, poll_interval=poll, inotify=inotify)
        w.start()
        w.configure(specs, known)
        watchers.append(w)
        return w

    yield make
    for w in watchers:
        w.stop()


def shas(update):
    return [c.sha for c in update.commits]


def test_commit_in_work_repo_is_reported_by_inotify(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    first = work.commit()
    make_watcher(WatchSpec("w", work.path), known={"w": {"refs/heads/main": first}})
    time.sleep(0.2)
    assert sink.updates() == []  # nothing new since the last-seen refs
    second = work.commit()
    sink.wait_for(lambda s: s.updates())
    [(repo, [update], trigger)] = sink.reports
    assert (repo, update.ref, update.old, update.new) == ("w", "refs/heads/main", first, second)
    assert trigger == Trigger.PUSH and shas(update) == [second]


def test_first_scan_reports_what_arrived_while_not_watched(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    seen = work.commit()
    missed = [work.commit(), work.commit()]
    work.branch("other")  # not watched
    make_watcher(WatchSpec("w", work.path), known={"w": {"refs/heads/main": seen}})
    sink.wait_for(lambda s: s.updates())
    [update] = sink.updates()
    assert shas(update) == missed


def test_push_to_bare_repo_with_several_commits(tmp_path, sink, make_watcher):
    server = bare_repo(tmp_path / "server.git")
    work = WorkRepo(tmp_path / "w")
    work.commit()
    work.push(str(server), "main")
    make_watcher(WatchSpec("s", server, branches=("*",)))
    sink.wait_for(lambda s: s.updates())  # first sight: the tip
    new = [work.commit() for _ in range(3)]
    work.push(str(server), "main")
    sink.wait_for(lambda s: len(s.updates()) == 2)
    assert shas(sink.updates()[1]) == new


def test_a_push_of_several_refs_reports_each_once_without_waiting_for_quiet(
    tmp_path, sink, make_watcher
):
    """The first event that counts starts a scan (no debounce): refs renamed into place
    while or after it ran are found by the scan their own event asks for."""
    server = bare_repo(tmp_path / "server.git")
    work = WorkRepo(tmp_path / "w")
    work.commit()
    branches = ("main", "a", "b", "c")
    for name in branches[1:]:
        work.branch(name)
    work.push(str(server), *branches)
    make_watcher(WatchSpec("s", server, branches=("*",)))
    sink.wait_for(lambda s: len(s.updates()) == 4)  # first sight: the tips
    tips = {}
    for name in branches:
        work.switch(name)
        tips[f"refs/heads/{name}"] = work.commit(files={"f.txt": name})
    work.push(str(server), *branches)
    sink.wait_for(lambda s: len(s.updates()) >= 8)
    time.sleep(0.3)  # a second report of a ref would come by now
    assert {u.ref: u.new for u in sink.updates()[4:]} == tips
    assert len(sink.updates()) == 8


def test_force_push_new_branch_and_deleted_branch(tmp_path, sink, make_watcher):
    server = bare_repo(tmp_path / "server.git")
    work = WorkRepo(tmp_path / "w")
    base = work.commit()
    old = work.commit()
    work.push(str(server), "main")
    make_watcher(WatchSpec("s", server, branches=("main", "feature/*")))
    sink.wait_for(lambda s: len(s.updates()) == 1)

    git(work.path, "reset", "-q", "--hard", base)
    rewritten = work.commit(files={"other.txt": "x"})
    work.push(str(server), "main", force=True)
    sink.wait_for(lambda s: len(s.updates()) == 2)
    forced = sink.updates()[1]
    assert (forced.old, forced.new, shas(forced)) == (old, rewritten, [rewritten])

    work.branch("feature/x")
    work.branch("ignored")
    work.push(str(server), "feature/x", "ignored")
    sink.wait_for(lambda s: len(s.updates()) == 3)
    created = sink.updates()[2]
    assert (created.ref, created.created, shas(created)) == (
        "refs/heads/feature/x",
        True,
        [rewritten],
    )

    work.push(str(server), "--delete", "feature/x")
    sink.wait_for(lambda s: len(s.updates()) == 4)
    deleted = sink.updates()[3]
    assert (deleted.ref, deleted.deleted, deleted.commits) == ("refs/heads/feature/x", True, ())
    time.sleep(0.3)
    assert all("ignored" not in u.ref for u in sink.updates())


def test_tags_only_when_configured(tmp_path, sink, make_watcher):
    tagged, plain = WorkRepo(tmp_path / "t"), WorkRepo(tmp_path / "p")
    tagged.commit(), plain.commit()
    make_watcher(WatchSpec("t", tagged.path, tags=("v*",)), WatchSpec("p", plain.path))
    sink.wait_for(lambda s: len(s.updates()) == 2)
    git(tagged.path, "tag", "-a", "v1.0", "-m", "release")
    git(plain.path, "tag", "v1.0")
    sink.wait_for(lambda s: len(s.updates()) == 3)
    time.sleep(0.3)
    [tag] = sink.updates()[2:]
    assert (tag.repo, tag.ref, tag.new) == ("t", "refs/tags/v1.0", tagged.head())


def test_packed_refs_rewrite_reports_nothing_new(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    work.commit()
    make_watcher(WatchSpec("w", work.path))
    sink.wait_for(lambda s: s.updates())
    git(work.path, "pack-refs", "--all")
    time.sleep(0.5)
    assert len(sink.updates()) == 1
    sha = work.commit()  # loose ref over a packed one
    sink.wait_for(lambda s: len(s.updates()) == 2)
    assert sink.updates()[1].new == sha


def test_unreadable_repo_is_logged_others_unaffected_and_rewatched(
    tmp_path, sink, make_watcher, caplog
):
    caplog.set_level(logging.WARNING, logger="scratchd.git.watcher")
    gone, other = WorkRepo(tmp_path / "gone"), WorkRepo(tmp_path / "other")
    gone.commit(), other.commit()
    watcher = make_watcher(WatchSpec("gone", gone.path), WatchSpec("other", other.path), poll=0.3)
    sink.wait_for(lambda s: len(s.updates()) == 2)
    (tmp_path / "gone").rename(tmp_path / "away")
    deadline = time.monotonic() + WAIT
    while watcher.repos()["gone"] is not False and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watcher.repos() == {"gone": False, "other": True}
    assert "gone cannot be read" in caplog.text

    other.commit()
    sink.wait_for(lambda s: len(s.updates("other")) == 2)

    (tmp_path / "away").rename(tmp_path / "gone")
    back = gone.commit()
    sink.wait_for(lambda s: len(s.updates("gone")) == 2)
    assert sink.updates("gone")[1].new == back
    assert "readable again" in caplog.text
    later = gone.commit()  # watched by inotify again, not only by the poll
    sink.wait_for(lambda s: len(s.updates("gone")) == 3)
    assert sink.updates("gone")[2].new == later


def test_poll_only_mode_still_finds_commits(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    work.commit()
    make_watcher(WatchSpec("w", work.path), poll=0.2, inotify=False)
    sink.wait_for(lambda s: s.updates())
    sha = work.commit()
    sink.wait_for(lambda s: len(s.updates()) == 2)
    assert sink.updates()[1].new == sha and sink.reports[1][2] == Trigger.POLL


def test_refused_report_is_reported_again(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    first = work.commit()
    sink.refuse_next = True
    make_watcher(WatchSpec("w", work.path), poll=0.2)
    sink.wait_for(lambda s: s.updates())
    assert sink.updates()[0].new == first and not sink.refuse_next


def test_reconfigure_adds_and_removes_repos(tmp_path, sink, make_watcher):
    a, b = WorkRepo(tmp_path / "a"), WorkRepo(tmp_path / "b")
    a.commit(), b.commit()
    watcher = make_watcher(WatchSpec("a", a.path))
    sink.wait_for(lambda s: len(s.updates()) == 1)
    watcher.configure([WatchSpec("b", b.path)])
    sink.wait_for(lambda s: len(s.updates("b")) == 1)
    assert watcher.repos() == {"b": True}
    a.commit()
    time.sleep(0.3)
    assert len(sink.updates("a")) == 1


def test_cron_schedule_reports_current_tips(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    sha = work.commit()
    watcher = make_watcher(WatchSpec("w", work.path, schedule="0 3 * * *"))
    fire_at = watcher.next_cron("w")
    assert (fire_at.hour, fire_at.minute) == (3, 0)
    watcher.run_cron_now("w")
    sink.wait_for(lambda s: s.crons)
    assert sink.crons == [("w", {"refs/heads/main": sha})]


def test_quiet_repositories_cause_no_scans(tmp_path, sink, make_watcher):
    """Our own reads of HEAD and refs/ must not look like changes (inotify reports opens)."""
    repos = [WorkRepo(tmp_path / f"r{i}") for i in range(3)]
    for r in repos:
        r.commit()
    watcher = make_watcher(*(WatchSpec(r.path.name, r.path) for r in repos))
    sink.wait_for(lambda s: len(s.updates()) == 3)
    time.sleep(0.3)
    before = watcher.scans
    time.sleep(1.0)
    assert watcher.scans == before
    repos[0].commit()
    sink.wait_for(lambda s: len(s.updates()) == 4)
    time.sleep(0.3)
    assert watcher.scans - before <= 3  # the commit's few events


def test_poll_interval_can_change_while_running(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    work.commit()
    watcher = make_watcher(WatchSpec("w", work.path), inotify=False)
    sink.wait_for(lambda s: s.updates())
    watcher.set_poll_interval(0.2)
    sha = work.commit()
    sink.wait_for(lambda s: len(s.updates()) == 2, timeout=5)
    assert sink.updates()[1].new == sha


def test_the_poll_leaves_quiet_watched_repositories_alone(tmp_path, sink, make_watcher):
    """inotify vouches for them: a poll reads only what it cannot (and all, now and then)."""
    from scratchd.git.watcher import FULL_SWEEP_EVERY

    work = WorkRepo(tmp_path / "w")
    work.commit()
    watcher = make_watcher(WatchSpec("w", work.path), poll=0.1)
    sink.wait_for(lambda s: s.updates())
    time.sleep(0.35)  # polls 1-3 (of FULL_SWEEP_EVERY): nothing read
    assert watcher.scans == 1 and FULL_SWEEP_EVERY > 4
    sink.wait_for(lambda s: watcher.scans >= 2, timeout=FULL_SWEEP_EVERY * 0.1 + 5)
    assert len(sink.updates()) == 1  # the sweep came, found nothing new


def test_commits_carry_when_the_inotify_event_came_not_when_the_scan_ran(tmp_path, sink):
    """The trigger latency starts at the ref change the daemon saw, before any debounce."""
    work = WorkRepo(tmp_path / "w")
    first = work.commit()
    w = Watcher(sink, poll_interval=3600.0, debounce=0.5)
    w.start()
    try:
        w.configure([WatchSpec("w", work.path)], {"w": {"refs/heads/main": first}})
        time.sleep(0.2)
        before = time.time()
        work.commit()
        sink.wait_for(lambda s: s.updates())
        reported = time.time()
    finally:
        w.stop()
    [commit] = sink.updates()[0].commits
    assert commit.seen_at is not None
    assert before <= commit.seen_at < before + 0.4  # the event, not the scan 0.5 s later
    assert reported - commit.seen_at >= 0.5


def test_a_poll_stamps_the_time_it_read_the_refs(tmp_path, sink, make_watcher):
    work = WorkRepo(tmp_path / "w")
    work.commit()
    before = time.time()
    make_watcher(WatchSpec("w", work.path), poll=0.2, inotify=False)
    sink.wait_for(lambda s: s.updates())
    [commit] = sink.updates()[0].commits
    assert before <= commit.seen_at <= time.time()
    assert commit == replace(commit, seen_at=None)  # not part of a commit's identity


class HoldingSink(RecordingSink):
    """Holds the scanner thread in its first report until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.holding = threading.Event()
        self.release = threading.Event()

    def refs_changed(self, repo, updates, trigger):
        if not self.holding.is_set():
            self.holding.set()
            assert self.release.wait(WAIT)
        super().refs_changed(repo, updates, trigger)


def test_a_push_is_scanned_before_polls_already_waiting(tmp_path):
    """A SIGHUP's scans of new repositories, or a sweep, must not delay a user's push."""
    repos = [WorkRepo(tmp_path / f"r{i}") for i in range(12)]
    for repo in repos:
        repo.commit()
    sink = HoldingSink()
    watcher = Watcher(sink, poll_interval=3600.0, inotify=False)
    watcher.start()
    try:
        watcher.configure([WatchSpec(r.path.name, r.path) for r in repos])
        assert sink.holding.wait(WAIT)  # the scanner is stuck in its first report
        for repo in repos:
            repo.commit()
        watcher.scan()  # every repository, as a poll
        watcher.scan("r11", Trigger.PUSH)  # the last in line
        sink.release.set()
        sink.wait_for(lambda s: len(s.reports) >= 2)
        held, after = sink.reports[0][0], sink.reports[1]
        assert held != "r11"
        assert (after[0], after[2]) == ("r11", Trigger.PUSH)
    finally:
        watcher.stop()


def test_a_reload_reads_only_new_and_changed_repositories(tmp_path, sink, make_watcher):
    repos = [WorkRepo(tmp_path / f"r{i}") for i in range(4)]
    for repo in repos:
        repo.commit()
    specs = [WatchSpec(r.path.name, r.path) for r in repos[:3]]
    watcher = make_watcher(*specs)
    sink.wait_for(lambda s: len(s.reports) == 3)
    time.sleep(0.2)
    before = watcher.scans
    changed = WatchSpec("r1", repos[1].path, branches=("main", "dev"))
    watcher.configure([specs[0], changed, specs[2], WatchSpec("r3", repos[3].path)])
    sink.wait_for(lambda s: len(s.reports) == 4)  # r3's first report
    time.sleep(0.3)
    assert watcher.scans - before == 2  # r1 (changed) and r3 (new); r0 and r2 kept
