from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchd.config import format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (60, 60.0),
        (1.5, 1.5),
        ("60", 60.0),
        ("60s", 60.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1h30m15s", 5415.0),
        ("250ms", 0.25),
        ("2d", 172800.0),
        ("0.5s", 0.5),
        (" 10s ", 10.0),
        (0, 0.0),
    ],
)
def test_parse(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["", "s", "5 m", "5x", "1h 30m", "m5", "-5s", -1, True, [], "1.s"]
)
def test_rejects(value):
    with pytest.raises(ValueError):
        parse_duration(value)


@settings(database=None)
@given(st.integers(0, 99), st.integers(0, 59), st.integers(0, 59))
def test_units_add_up(h, m, s):
    assert parse_duration(f"{h}h{m}m{s}s") == h * 3600 + m * 60 + s


@pytest.mark.parametrize(
    ("seconds", "text"), [(3.25, "3.2s"), (42, "42s"), (61, "1m01s"), (3720, "1h02m")]
)
def test_format(seconds, text):
    assert format_duration(seconds) == text
