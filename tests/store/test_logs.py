"""Build log files: written live, compressed when done, followed without losing lines."""

from __future__ import annotations

import gzip
import threading
import time

from scratchd.store import BuildLog, StateDir, compress_log, follow_log, read_log


def test_lines_are_timestamped_and_flushed(tmp_path):
    path = StateDir(tmp_path).log_path("app", 7)
    log = BuildLog(path, clock=lambda: 0.5)
    log.line("hello")
    log.line("oops\n", stream="stderr")
    # readable before close: another process may be following it
    assert path.read_text() == (
        "1970-01-01T00:00:00.500Z stdout hello\n1970-01-01T00:00:00.500Z stderr oops\n"
    )
    gz = log.finish()
    assert gz == path.with_name("7.log.gz") and not path.exists()
    assert gzip.decompress(gz.read_bytes()).decode().count("\n") == 2
    assert read_log(path).endswith("stderr oops\n")


def test_read_log_missing(tmp_path):
    assert read_log(tmp_path / "1.log") is None
    assert compress_log(tmp_path / "1.log") == tmp_path / "1.log.gz"


def test_follow_sees_every_line_across_compression(tmp_path):
    path = tmp_path / "logs" / "app" / "1.log"
    finished = threading.Event()

    def build() -> None:
        time.sleep(0.1)  # the follower starts before the log exists
        log = BuildLog(path)
        for n in range(200):
            log.line(f"line {n}")
            if n % 50 == 0:
                time.sleep(0.02)
        log.finish()  # compressed and unlinked while the follower reads
        finished.set()

    writer = threading.Thread(target=build)
    writer.start()
    text = "".join(follow_log(path, finished.is_set, poll=0.01))
    writer.join(10)
    lines = text.splitlines()
    assert [line.split(" ", 2)[2] for line in lines] == [f"line {n}" for n in range(200)]


def test_follow_a_finished_build_reads_the_archive(tmp_path):
    path = tmp_path / "2.log"
    with BuildLog(path) as log:
        log.line("done")
    compress_log(path)
    assert "done" in "".join(follow_log(path, lambda: True))


def test_follow_a_build_that_never_logged(tmp_path):
    assert list(follow_log(tmp_path / "3.log", lambda: True)) == []


def test_runner_output_lines_keep_pipeline_and_step(tmp_path):
    from scratchd.runner.sink import OutputLine

    log = BuildLog(tmp_path / "4.log")
    log(OutputLine("4", "build", "compile", "stderr", "warning: x", 86400.25))
    log.close()
    assert (
        read_log(tmp_path / "4.log")
        == "1970-01-02T00:00:00.250Z stderr build/compile: warning: x\n"
    )


def test_every_line_written_is_masked_with_the_builds_masker(tmp_path):
    from scratchd.models import Secret
    from scratchd.redact import Masker

    daemon = Masker([Secret("registry-pw\nsecond-line")])
    log = BuildLog(tmp_path / "1.log", masker=Masker([Secret("repo-token")], parents=(daemon,)))
    log.line("checking out with repo-token")  # scratchd's own line, not step output
    log.line("second-line", stream="stderr", pipeline="build", step="cat")
    log.line("build failed: registry-pw rejected", "info")
    text = (tmp_path / "1.log").read_text()
    assert "with ***" in text and "build/cat: ***" in text and "failed: *** rejected" in text
    assert not any(s in text for s in ("registry-pw", "second-line", "repo-token"))
