"""Tail-first and ranged reads of plain and gzip'd logs, and the resumable follower."""

from __future__ import annotations

import gzip

import pytest

from scratchd.web.logs import LogFollower, line_range, tail


def write(path, count: int, *, gz: bool = False, partial: str = "") -> None:
    text = "".join(f"line {n}\n" for n in range(1, count + 1)) + partial
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wt") as f:
            f.write(text)
    else:
        path.write_text(text)


@pytest.mark.parametrize("gz", [False, True])
def test_tail_numbers_lines_from_the_start(tmp_path, gz):
    log = tmp_path / "1.log"
    write(log, 10_000, gz=gz, partial="" if gz else "half a li")
    piece = tail(log, 2000)
    assert (piece.first, piece.total, len(piece.lines)) == (8001, 10_000, 2000)
    assert piece.lines[0] == "line 8001" and piece.lines[-1] == "line 10000"
    short = tail(log, 50_000)
    assert (short.first, len(short.lines)) == (1, 10_000)


def test_tail_of_a_log_with_long_lines_reads_across_blocks(tmp_path):
    log = tmp_path / "1.log"
    log.write_text("".join(f"{n} " + "x" * 100_000 + "\n" for n in range(1, 6)))
    piece = tail(log, 2)
    assert piece.first == 4 and [ln.split()[0] for ln in piece.lines] == ["4", "5"]


@pytest.mark.parametrize("gz", [False, True])
def test_range(tmp_path, gz):
    log = tmp_path / "1.log"
    write(log, 100, gz=gz)
    piece = line_range(log, 10, 12)
    assert piece.lines == ["line 10", "line 11", "line 12"] and piece.total == 100
    assert line_range(log, 99, 500).lines == ["line 99", "line 100"]


def test_missing_log_is_none(tmp_path):
    assert tail(tmp_path / "nope.log", 10) is None
    assert line_range(tmp_path / "nope.log", 1, 2) is None


def test_follower_resumes_by_number_and_survives_compression(tmp_path):
    log = tmp_path / "1.log"
    follower = LogFollower(log, after=0)
    assert follower.poll() == []  # no log yet
    with open(log, "w") as f:
        f.write("line 1\nline 2\nhalf")
        f.flush()
        assert follower.poll() == [(1, "line 1"), (2, "line 2")]
        f.write(" done\n")
        f.flush()
        assert follower.poll() == [(3, "half done")]
    data = log.read_bytes()
    with gzip.open(log.with_name("1.log.gz"), "wb") as g:
        g.write(data + b"line 4\n")
    log.unlink()
    assert follower.poll() == []  # its open file is the plain one, read to the end
    resumed = LogFollower(log, after=2)  # a reconnect after line 2 reads the gzip
    assert resumed.poll() == [(3, "half done"), (4, "line 4")]
    follower.close()
    resumed.close()
