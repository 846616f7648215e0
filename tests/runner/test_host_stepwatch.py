"""LineSplitter and StepClock, the pieces both backends share (pure, no processes)."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchd.errors import BuildCancelled, StepTimeout
from scratchd.runner.stepwatch import LineSplitter, StepClock


def test_multibyte_characters_split_across_chunks_decode_whole():
    s = LineSplitter()
    data = "grüße\r\nzweite".encode()
    out = [line for i in range(len(data)) for line in s.feed(data[i : i + 1])]
    assert out + s.flush() == ["grüße", "zweite"]


def test_overlong_lines_are_cut_into_bounded_pieces():
    s = LineSplitter(max_chars=4)
    assert s.feed(b"abcdefghij") == ["abcd", "efgh"]
    assert s.feed(b"k\n") == ["ijk"]
    assert s.flush() == []
    assert s.feed(b"abc") == []
    assert s.feed(b"defghi\nj\n") == ["abcd", "efgh", "i", "j"]


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=17))
def test_any_bytes_in_any_chunking_give_the_same_lines(data, size):
    whole = LineSplitter()
    expected = whole.feed(data) + whole.flush()
    chunked = LineSplitter()
    got = [line for i in range(0, len(data), size) for line in chunked.feed(data[i : i + size])]
    assert got + chunked.flush() == expected
    lines = data.decode("utf-8", "replace").split("\n")
    if lines[-1] == "":
        lines.pop()
    assert expected == [line.removesuffix("\r") for line in lines]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_clock_reports_command_timeout_no_response_and_cancel():
    fake, cancel = FakeClock(), threading.Event()
    clock = StepClock("compile", 120, 30, cancel, clock=fake)
    fake.now += 29
    assert clock.stop_reason() is None
    assert clock.remaining() == pytest.approx(1)
    clock.output_seen()
    fake.now += 29
    assert clock.stop_reason() is None
    fake.now += 1
    reason = clock.stop_reason()
    assert isinstance(reason, StepTimeout) and "no-response-timeout (30 s)" in str(reason)
    clock.output_seen()
    fake.now += 62
    reason = clock.stop_reason()
    assert isinstance(reason, StepTimeout) and "command-timeout (2 min)" in str(reason)
    assert reason.step == "compile"
    cancel.set()
    assert isinstance(clock.stop_reason(), BuildCancelled)


@given(st.binary(max_size=200), st.integers(min_value=1, max_value=9))
def test_cutting_long_lines_does_not_depend_on_chunking(data, size):
    whole = LineSplitter(max_chars=5)
    expected = whole.feed(data) + whole.flush()
    chunked = LineSplitter(max_chars=5)
    got = [line for i in range(0, len(data), size) for line in chunked.feed(data[i : i + size])]
    assert got + chunked.flush() == expected
    assert all(len(line) <= 5 for line in expected)
