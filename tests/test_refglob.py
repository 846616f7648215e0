"""The ref-name rule the config checks globs with, held to libgit2's own."""

from __future__ import annotations

import pygit2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scratchd.refglob import valid_ref_name

# Pieces that hit every rule of git check-ref-format, mixed with plain text.
_PIECES = st.sampled_from(
    ["a", "main", "v1.0", "/", "//", ".", "..", ".lock", "@", "@{", "{", "~", "^", ":", "?", "*",
     "[", "\\", " ", "\t", "\x7f", "-", "_", "é", "x.lock/", "/.", "lock"]
)  # fmt: skip


# No NUL: libgit2 reads a C string and would judge only what comes before it.
_TEXT = st.text(st.characters(exclude_characters="\0"), max_size=3)


@settings(max_examples=1500, deadline=None)
@given(st.lists(_PIECES | _TEXT, max_size=6).map("".join))
def test_agrees_with_libgit2(short):
    name = f"refs/heads/{short}"
    assert valid_ref_name(name) == pygit2.reference_is_valid_name(name), name


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("refs/heads/main", True),
        ("refs/heads/release/1.0", True),
        ("refs/heads/a..b", False),
        ("refs/heads/x.lock", False),
        ("refs/heads/.hidden", False),
        ("refs/heads/a//b", False),
        ("refs/heads/end.", False),
        ("refs/heads/at@{1}", False),
        ("refs/heads/sp ace", False),
        ("@", False),
    ],
)
def test_the_rules_of_check_ref_format(name, valid):
    assert valid_ref_name(name) is valid
