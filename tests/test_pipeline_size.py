"""A wercker.yml over 1 MiB is refused before parsing, the same way everywhere.

A commit is anyone's input; parsing a 50 MB YAML file cost the daemon a
minute of CPU and more than a gigabyte. ``scratchd lint``, ``scratchd build``
and the daemon all give the same one-line error, naming the file.
"""

from __future__ import annotations

import subprocess
import sys
import time

from scratchd.cli import main
from scratchd.pipeline.limits import MAX_PIPELINE_FILE
from tests.git.repos import WorkRepo
from tests.support.daemon import QUICK_YML, make_daemon_fixture, repo_table  # noqa: F401

REFUSED = f"larger than the {MAX_PIPELINE_FILE}-byte (1 MiB) limit"


def padded(yml: str, size: int) -> str:
    """``yml`` followed by YAML comment lines, ``size`` bytes in all."""
    filler = size - len(yml.encode())
    line = "#" + "x" * 98 + "\n"
    return yml + line * (filler // len(line)) + "#" * (filler % len(line))


def test_lint_refuses_a_file_over_the_limit_and_accepts_one_at_it(tmp_path):
    big = tmp_path / "wercker.yml"
    big.write_text(padded(QUICK_YML, MAX_PIPELINE_FILE + 1))
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "scratchd", "lint", str(big)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 1 and out.stderr == ""
    assert out.stdout.startswith(f"{big}:1:1: ") and REFUSED in out.stdout
    assert time.monotonic() - started < 20

    big.write_text(padded(QUICK_YML, MAX_PIPELINE_FILE))
    ok = subprocess.run(
        [sys.executable, "-m", "scratchd", "lint", str(big)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_build_refuses_it_with_the_same_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("huge", {"wercker.yml": padded(QUICK_YML, 2 * MAX_PIPELINE_FILE)})
    code = main(["build", str(repo.path), "--executor=host"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{repo.path}/wercker.yml:1:1: " in err and REFUSED in err
    assert "Traceback" not in err


def test_daemon_fails_the_build_with_the_same_error_and_carries_on(tmp_path, make_daemon):
    huge = WorkRepo(tmp_path / "huge")
    huge.commit("huge", {"wercker.yml": padded(QUICK_YML, 3 * MAX_PIPELINE_FILE)})
    good = WorkRepo(tmp_path / "good")
    good.commit("good", {"wercker.yml": QUICK_YML, "counter.txt": "0\n"})
    d = make_daemon([repo_table("huge", huge.path), repo_table("good", good.path)]).start()

    failed = d.wait_status(huge.head(), "failed")
    assert "huge:wercker.yml:1:1: " in failed.message and REFUSED in failed.message
    d.wait_status(good.head(), "passed")
    assert d.proc.poll() is None
