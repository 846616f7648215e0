"""Step option values read exactly as wercker's Go YAML library (yaml.v2) read them.

The reference is Debian's build of gopkg.in/yaml.v2 (golang-gopkg-yaml.v2-dev)
decoding into ``yaml.MapSlice`` followed by wercker's ``ifaceToString``
(core/config.go), compiled here once per session.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scratchd.pipeline.yamlnodes import DROPPED, wercker_text
from tests.support.services import unavailable

GOPATH = Path("/usr/share/gocode")

# wercker's ifaceToString, and the decoding wercker's RawStepConfig did.
GO_PROGRAM = """
package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"
	"strconv"

	yaml "gopkg.in/yaml.v2"
)

func ifaceToString(dataValue interface{}) (string, bool) {
	switch v := dataValue.(type) {
	case string:
		return v, true
	case int:
		return strconv.Itoa(v), true
	case int32:
		return strconv.FormatInt(int64(v), 10), true
	case int64:
		return strconv.FormatInt(v, 10), true
	case bool:
		return strconv.FormatBool(v), true
	default:
		return "", dataValue == nil
	}
}

func main() {
	data, _ := ioutil.ReadAll(os.Stdin)
	var doc yaml.MapSlice
	if err := yaml.Unmarshal(data, &doc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := [][]interface{}{}
	for _, item := range doc {
		text, ok := ifaceToString(item.Value)
		out = append(out, []interface{}{text, ok})
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
"""


@pytest.fixture(scope="module")
def yaml_v2(tmp_path_factory):
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/gopkg.in/yaml.v2").is_dir():
        unavailable("Go and golang-gopkg-yaml.v2-dev are needed for the yaml.v2 reference")
    src = tmp_path_factory.mktemp("yamlv2")
    (src / "main.go").write_text(GO_PROGRAM)
    env = {"GO111MODULE": "off", "GOPATH": str(GOPATH), "GOCACHE": str(src / "cache")}
    env.update(HOME=str(src), PATH="/usr/bin:/bin", GOFLAGS="")
    binary = src / "yamlv2"
    subprocess.run([go, "build", "-o", str(binary), "main.go"], cwd=src, env=env, check=True)

    def read(values: list[str]) -> list[str | None]:
        doc = "".join(f"k{i}: {value}\n" for i, value in enumerate(values))
        out = subprocess.run([binary], input=doc, capture_output=True, text=True, check=True)
        return [text if ok else DROPPED for text, ok in json.loads(out.stdout)]

    return read


def ours(values: list[str]) -> list[str | None]:
    doc = yaml.compose("".join(f"k{i}: {value}\n" for i, value in enumerate(values)))
    return [wercker_text(value) for _, value in doc.value]


TABLE = [
    "yes", "Yes", "y", "N", "on", "OFF", "true", "False", "~", "null", "", "plain", "0",
    "010", "08", "0x1F", "0o17", "0b101", "-0b11", "+5", "-42", "1_000", "1.5", "1.", ".5",
    "1e3", "-1.5e-3", ".inf", "-.Inf", ".NaN", "9223372036854775807", "9223372036854775808",
    "18446744073709551616", "2015-01-01", "2015-13-01", "1.0.0", "'1.5'", '"yes"', "!!str 1.5",
    "|\n  block", "$HOME", "a b", "0x", "1__0", "04E400", "-4e400", "1e-400",
    ".0_", ".1_6", "._1", ".1__6", ".5e1_0", ".5e3", "-.5", "+.5_0",
    "0b-1__", "-0b-1", "0b+1", "-0b+1", "0b" + "1" * 64, "0b" + "1" * 65,
]  # fmt: skip


def test_table_agrees_with_yaml_v2(yaml_v2):
    assert ours(TABLE) == yaml_v2(TABLE)


_PIECES = st.sampled_from(
    [*"0123456789._-+xXoObBeEyYnNaA", "yes", "on", "true", "inf", "nan", "0b", "__"]
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(_PIECES, min_size=1, max_size=8).map("".join), min_size=30, max_size=30))
def test_number_like_values_agree_with_yaml_v2(yaml_v2, values):
    values = [v for v in values if not v.startswith("-") or v[1:2] not in ("", " ")]
    assert ours(values) == yaml_v2(values)
