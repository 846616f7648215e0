"""``expand`` against a table of wercker's cases and against Go's own os.Expand."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchd.models import Secret
from scratchd.pipeline.env import expand
from tests.support.services import unavailable

ENV = {"HOME": "/root", "A": "x", "A_1": "y", "$": "pid", "1": "one", "a b": "spaced", "E": ""}

CASES = [
    ("plain text", "plain text"),
    ("$HOME/bin", "/root/bin"),
    ("${HOME}bin", "/rootbin"),
    ("$A_1-$A", "y-x"),
    ("$UNKNOWN|${UNKNOWN}|", "||"),  # unknown names become empty, like os.ExpandEnv
    ("$E.", "."),
    ("cost $5", "cost "),  # $5 is a special one-character name
    ("$1x", "onex"),
    ("$$", "pid"),
    ("${$}", "pid"),
    ("${a b}", "spaced"),
    ("${}", ""),  # bad syntax is eaten
    ("x${", "x"),
    ("${HOME", "HOME"),  # only the unterminated "${" is eaten
    ("$", "$"),
    ("a$ b", "a$ b"),  # a dollar without a name stays
    ("$.", "$."),
    ("$€", "$€"),
    ("$Aé", "xé"),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_expand_cases(text, expected):
    assert expand(text, ENV) == expected


def test_secret_values_expand_to_their_real_text():
    assert expand("pw=$PASS", {"PASS": Secret("hunter2")}) == "pw=hunter2"


GO_PROGRAM = """
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var env map[string]string
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	in.Scan()
	json.Unmarshal(in.Bytes(), &env)
	for in.Scan() {
		var s string
		json.Unmarshal(in.Bytes(), &s)
		out, _ := json.Marshal(os.Expand(s, func(k string) string { return env[k] }))
		fmt.Println(string(out))
	}
}
"""


@pytest.fixture(scope="module")
def go_expand(tmp_path_factory):
    """A compiled Go program applying os.Expand to JSON lines (the reference)."""
    go = shutil.which("go")
    if go is None:
        unavailable("the Go toolchain (golang-go) is not installed")
    src = tmp_path_factory.mktemp("goexpand")
    (src / "main.go").write_text(GO_PROGRAM)
    env = {"GOCACHE": str(src / "cache"), "GOPATH": str(src / "gopath"), "HOME": str(src)}
    env["PATH"] = "/usr/bin:/bin"
    binary = src / "expand"
    subprocess.run(
        [go, "build", "-o", str(binary), "main.go"], cwd=src, env=env, check=True, timeout=300
    )

    def run(texts: list[str]) -> list[str]:
        lines = [json.dumps(ENV)] + [json.dumps(t) for t in texts]
        out = subprocess.run(
            [binary], input="\n".join(lines) + "\n", capture_output=True, text=True, check=True
        )
        return [json.loads(line) for line in out.stdout.splitlines()]

    return run


def test_table_agrees_with_go(go_expand):
    assert go_expand([t for t, _ in CASES]) == [e for _, e in CASES]


_PIECES = st.sampled_from(["$", "{", "}", "A", "A_1", "1", "$$", "a b", "HOME", "-", "é", " ", "x"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_PIECES, max_size=12).map("".join), min_size=20, max_size=20))
def test_expand_matches_go_os_expand(go_expand, texts):
    """Random strings built from the syntax's pieces expand exactly as Go does."""
    assert [expand(t, ENV) for t in texts] == go_expand(texts)
