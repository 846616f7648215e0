"""``scratchd run`` as a command: its errors, its lock, poll-only mode, ``status`` beside it."""

from __future__ import annotations

import subprocess
import sys

from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401


def scratchd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchd", *args], capture_output=True, text=True, timeout=timeout
    )


def project(path) -> WorkRepo:
    repo = WorkRepo(path)
    repo.commit(f"{path.name}: wercker.yml", files={"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    return repo


def test_invalid_config_is_one_line_naming_file_and_key(tmp_path):
    config = tmp_path / "scratchd.toml"
    config.write_text('[daemon]\nmax_concurrent_builds = "many"\n')
    done = scratchd("run", "--config", str(config))
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert str(config) in line and "max_concurrent_builds" in line and ":2:" in line


def test_second_daemon_on_the_same_state_dir_is_refused(tmp_path, make_daemon):
    work = project(tmp_path / "w")
    d = make_daemon([repo_table("w", work.path)]).start()
    done = scratchd("run", "--config", str(d.config))
    assert done.returncode == 1
    assert f"another scratchd daemon (pid {d.proc.pid})" in done.stderr
    assert d.proc.poll() is None


def test_poll_only_mode_finds_commits_by_polling(tmp_path, make_daemon):
    work = project(tmp_path / "w")
    d = make_daemon([repo_table("w", work.path)], poll_interval="1s")
    d.start_args = ["--poll-only"]
    d.start()
    d.wait_status(work.head(), "passed")
    sha = work.commit()
    build = d.wait_status(sha, "passed", timeout=20)
    assert build.trigger == "poll"


def test_status_sees_the_running_daemon(tmp_path, make_daemon):
    work = project(tmp_path / "w")
    d = make_daemon([repo_table("w", work.path)]).start()
    d.wait_status(work.head(), "passed")
    done = scratchd("status", "--config", str(d.config))
    assert done.returncode == 0, done.stderr
    assert f"daemon: running (pid {d.proc.pid}" in done.stdout
    assert "watching 1 repo, " in done.stdout
    assert d.stop() == 0
    assert scratchd("status", "--config", str(d.config)).returncode == 3


def test_registry_passwords_are_masked_in_daemon_records_and_every_build(tmp_path):
    import io
    import logging

    from scratchd.cli import _configure_logging
    from scratchd.cli.run import Daemon
    from scratchd.config import load_config
    from scratchd.journal import install_handler

    password = tmp_path / "quay.pw"
    password.write_text("quay-robot-pw\n")
    config_file = tmp_path / "scratchd.toml"
    config_file.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n'
        f'[registry."quay.io"]\nusername = "robot"\npassword_file = "{password}"\n'
    )
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        masker = _configure_logging(0, False)  # what main() hands to the command as args.masker
        stream = io.StringIO()
        install_handler(logging.INFO, prefer_journal=False, redactor=masker, stream=stream)
        daemon = Daemon(load_config(config_file), masker=masker)
        build = daemon.build_masker()  # read at build start, before any push needs it
        logging.getLogger("scratchd.test").warning("push refused for quay-robot-pw")
        assert build.redact("cat quay.pw: quay-robot-pw") == "cat quay.pw: ***"
        assert "push refused for ***" in stream.getvalue()
        assert "quay-robot-pw" not in stream.getvalue()
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


def test_the_daemon_hands_the_gil_round_quickly_while_it_runs(tmp_path):
    """A thread busy in Python (a build's log, a reload's parse) keeps the GIL for up to the
    switch interval each time the watcher or the loop gives it up; Python's 5 ms made a
    commit wait 100-200 ms behind a SIGHUP. The daemon shortens it, and puts it back."""
    import os
    import signal
    import threading
    import time

    from scratchd.cli.run import SWITCH_INTERVAL, Daemon
    from scratchd.config import load_config
    from scratchd.store import StateDir, Store

    config_file = tmp_path / "scratchd.toml"
    config_file.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n')
    before = sys.getswitchinterval()
    assert before > SWITCH_INTERVAL
    seen: list[float] = []
    saved = {s: signal.getsignal(s) for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT)}

    def operator() -> None:
        try:
            db = StateDir(tmp_path / "state").db
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if db.exists():
                    store = Store(db, create=False)
                    info = store.daemon_info()
                    store.close()
                    if info is not None and info.status != "stopped":
                        break
                time.sleep(0.02)
            seen.append(sys.getswitchinterval())
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # whatever happened, the daemon stops

    helper = threading.Thread(target=operator, daemon=True)
    helper.start()
    try:
        assert Daemon(load_config(config_file)).run() == 0  # signals need the main thread
    finally:
        helper.join(20)
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    assert seen == [SWITCH_INTERVAL]
    assert sys.getswitchinterval() == before
