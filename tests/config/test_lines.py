"""The key → line scanner that gives config errors their line numbers."""

from __future__ import annotations

import tomllib

import pytest

from scratchd.config.lines import KeyLines, dotted

TEXT = '''\
# top comment with key = 1 and [fake]
title = "x"

[daemon]
state_dir = "/var/lib/scratchd"   # trailing [comment]
poll_interval = [
  "a = 1",
  ["nested", "]"],
]
motd = """
fake_key = 3
[not.a.table]
"""
after = 'say "hi" [x] # not a comment'

[registry."quay.io"]
username = "robot"
"odd key" = 1

[[repo]]
name = "first"
dotted.inner = true

[[repo]]
name = "second"
inline = { path = "x", deep = { a = 1 } }
path = "/srv/second"
'''


@pytest.fixture(scope="module")
def lines() -> KeyLines:
    tomllib.loads(TEXT)  # the fixture itself must be valid TOML
    return KeyLines(TEXT)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("title",), 2),
        (("daemon",), 4),
        (("daemon", "state_dir"), 5),
        (("daemon", "poll_interval"), 6),
        (("daemon", "motd"), 10),
        (("daemon", "after"), 14),
        (("registry", "quay.io"), 16),
        (("registry", "quay.io", "username"), 17),
        (("registry", "quay.io", "odd key"), 18),
        (("repo", 0), 20),
        (("repo", 0, "name"), 21),
        (("repo", 0, "dotted", "inner"), 22),
        (("repo", 1), 24),
        (("repo", 1, "name"), 25),
        (("repo", 1, "inline"), 26),
        (("repo", 1, "path"), 27),
    ],
)
def test_lines_of_keys(lines, path, line):
    assert lines.line(path) == line


def test_text_inside_strings_and_arrays_is_not_a_key(lines):
    # "fake_key" and "[not.a.table]" live inside a multi-line string: no line of their own,
    # so the lookup falls back to the enclosing table's header.
    assert lines.line(("daemon", "fake_key")) == 4
    assert lines.line(("not", "a", "table")) is None


def test_unknown_key_falls_back_to_its_table_header(lines):
    assert lines.line(("repo", 1, "nope")) == 24
    assert lines.line(("repo", 1, "inline", "path")) == 26
    assert lines.line(("nothing",)) is None


def test_dotted_spelling():
    assert dotted(("repo", 1, "branches")) == "repo[2].branches"
    assert dotted(("registry", "quay.io", "username")) == 'registry."quay.io".username'
    assert dotted(("daemon", "state_dir")) == "daemon.state_dir"
