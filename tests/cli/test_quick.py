"""The plain command-line reader: it reads what argparse would, or leaves it to argparse."""

from __future__ import annotations

import os

import pytest

from scratchd.cli import build_parser, main
from scratchd.cli.builds import DEFAULTS, OPTIONS, quick_args
from scratchd.cli.quick import Option, parse_plain

SPEC = {"--name": Option("name", "value"), "--tag": Option("tag", "append")}
SPEC |= {"--on": Option("on", "flag"), "--count": Option("count", "value", int)}


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ([], {}),
        (["--name", "x"], {"name": "x"}),
        (["--name=x=y"], {"name": "x=y"}),
        (["--tag", "a", "--tag=b"], {"tag": ["a", "b"]}),
        (["--on", "--count", "3"], {"on": True, "count": 3}),
        (["--name", "a", "--name", "b"], {"name": "b"}),  # the last one wins, as in argparse
    ],
)
def test_reads_options_spelled_out(words, expected):
    defaults = {"name": None, "tag": None, "on": False, "count": 1}
    assert parse_plain(words, SPEC, defaults) == defaults | expected


@pytest.mark.parametrize(
    "words",
    [
        ["-h"],
        ["--help"],
        ["--nam", "x"],  # argparse takes abbreviations; their ambiguity is its to judge
        ["--name"],
        ["--name", "-x"],
        ["--name", ""],
        ["--name="],
        ["--on=yes"],
        ["--count", "three"],
        ["--", "--name", "x"],
        ["positional"],
    ],
)
def test_leaves_anything_else_to_argparse(words):
    assert parse_plain(words, SPEC, {}) is None


def test_builds_options_are_the_parsers():
    """Every option ``builds`` reads itself is one its argparse parser has, same destination."""
    parser = build_parser("builds")
    (sub,) = (a for a in parser._actions if a.dest == "command")
    actions = {s: a for a in sub.choices["builds"]._actions for s in a.option_strings}
    assert {k: o.dest for k, o in OPTIONS.items()} == {k: actions[k].dest for k in OPTIONS}
    assert set(actions) - set(OPTIONS) == {"-h", "--help"}
    defaults = {a.dest: a.default for a in actions.values() if a.dest != "help"}
    assert defaults == DEFAULTS | {"json": False}


ARGVS = [
    ["builds"],
    ["builds", "--repo", "app", "--limit", "5"],
    ["builds", "--config=/etc/x.toml", "--status", "failed", "--status=passed", "--json"],
    ["builds", "--digest", "sha256:" + "1" * 64, "--repo=app"],
    ["builds", "--limit", "+7"],
]


@pytest.mark.parametrize("argv", ARGVS)
def test_builds_quick_args_equal_argparse(argv):
    quick = quick_args(argv[1:])
    assert quick is not None
    parsed = vars(build_parser("builds").parse_args(argv))
    if parsed["config"] is not None:
        parsed["config"] = os.fspath(parsed["config"])  # argparse makes it a Path
    assert vars(quick) == parsed


@pytest.mark.parametrize(
    "argv",
    [
        ["builds", "--limit", "0"],
        ["builds", "--limit", "x"],
        ["builds", "--bogus"],
        ["builds", "--repo"],
        ["builds", "--repo", "--json"],
        ["builds", "extra"],
        ["builds", "--help"],
        ["builds", "-h"],
    ],
)
def test_builds_help_and_errors_are_argparses(argv, capsys):
    """What ``builds`` does not read itself gets exactly the full parser's answer."""
    assert quick_args(argv[1:]) is None
    with pytest.raises(SystemExit) as expected:
        build_parser("builds").parse_args(argv)
    want = capsys.readouterr()
    with pytest.raises(SystemExit) as got:
        main(argv)
    assert (got.value.code, capsys.readouterr()) == (expected.value.code, want)
