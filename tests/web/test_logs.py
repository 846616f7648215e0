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


def bytes_read() -> int:
    """What this process has read through system calls so far (``rchar``)."""
    for line in open("/proc/self/io"):  # noqa: SIM115 - read at once
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


def test_a_growing_log_is_counted_once_then_only_what_was_added(tmp_path):
    from scratchd.web.logs import LineCounts

    log = tmp_path / "1.log"
    write(log, 200_000, partial="half a li")
    counts = LineCounts()
    before = bytes_read()
    first = tail(log, 100, counts)
    whole = bytes_read() - before
    assert whole >= log.stat().st_size and first.total == 200_000
    with open(log, "a") as f:
        f.write("ne\n" + "".join(f"line {n}\n" for n in range(200_002, 200_051)))
    before = bytes_read()
    again = tail(log, 100, counts)
    spent = bytes_read() - before
    assert (again.first, again.total) == (199_951, 200_050)
    assert again.lines[-1] == "line 200050" and again.lines[0] == "line 199951"
    assert spent < whole / 10  # the new lines and the tail, not the whole log again
    assert again == tail(log, 100)  # the same answer as counting from scratch


def test_a_log_replaced_underneath_is_counted_anew(tmp_path):
    from scratchd.web.logs import LineCounts

    log = tmp_path / "1.log"
    write(log, 500)
    counts = LineCounts()
    assert tail(log, 10, counts).total == 500
    log.unlink()
    write(log, 800)  # another file at the path: a new build after the state was reset
    assert tail(log, 10, counts).total == 800
    with open(log, "w") as f:  # truncated and rewritten in place (same inode), longer
        f.write("".join(f"other {n}\n" for n in range(900)))
    assert tail(log, 10, counts) == tail(log, 10)
    assert tail(log, 10, counts).total == 900


def test_a_finished_logs_tail_is_read_once(tmp_path, monkeypatch):
    import gzip as gz_module

    from scratchd.web.logs import LineCounts

    log = tmp_path / "1.log"
    write(log, 5_000, gz=True)
    counts = LineCounts()
    first = tail(log, 100, counts)
    calls = []
    real = gz_module.GzipFile.__iter__
    monkeypatch.setattr(gz_module.GzipFile, "__iter__", lambda f: calls.append(1) or real(f))
    assert tail(log, 100, counts) == first and calls == []
    assert tail(log, 50, counts).first == 4_951 and calls == [1]  # another count: read again
