"""Top-level settings and workflows read as wercker's config reader read them.

The reference is Debian's gopkg.in/yaml.v2 decoding into the fields of
wercker's ``Config`` (core/config.go) the way ``RawConfig.UnmarshalYAML`` did:
its struct decode's type errors are dropped, so a value of the wrong shape
leaves the field empty and the file still runs.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from scratchd.pipeline.parse import parse_plan
from scratchd.pipeline.plan import DEFAULT_COMMAND_TIMEOUT
from tests.support.services import unavailable

GO_PROGRAM = """
package main

import (
	"encoding/json"
	"fmt"
	"io/ioutil"
	"os"

	yaml "gopkg.in/yaml.v2"
)

type workflowPipeline struct {
	Name     string   `yaml:"name"`
	Requires []string `yaml:"requires"`
}

type workflow struct {
	Name      string             `yaml:"name"`
	Pipelines []workflowPipeline `yaml:"pipelines"`
}

type config struct {
	CommandTimeout int           `yaml:"command-timeout"`
	Services       []interface{} `yaml:"services"`
	Workflows      []*workflow   `yaml:"workflows"`
}

func main() {
	data, _ := ioutil.ReadAll(os.Stdin)
	var c config
	_ = yaml.Unmarshal(data, &c) // wercker's RawConfig dropped this error
	requires := map[string][]string{}
	names := []string{}
	for _, w := range c.Workflows {
		for _, p := range w.Pipelines {
			requires[p.Name] = append([]string{}, p.Requires...)
			names = append(names, p.Name)
		}
	}
	b, _ := json.Marshal(map[string]interface{}{
		"command_timeout": c.CommandTimeout, "services": len(c.Services),
		"requires": requires, "names": names,
	})
	fmt.Println(string(b))
}
"""


@pytest.fixture(scope="module")
def wercker_config(tmp_path_factory):
    go = shutil.which("go")
    gopath = "/usr/share/gocode"
    if go is None or not Path(gopath, "src/gopkg.in/yaml.v2").is_dir():
        unavailable("Go and golang-gopkg-yaml.v2-dev are needed for the yaml.v2 reference")
    src = tmp_path_factory.mktemp("configv2")
    (src / "main.go").write_text(GO_PROGRAM)
    env = {"GO111MODULE": "off", "GOPATH": gopath, "GOCACHE": str(src / "cache")}
    env.update(HOME=str(src), PATH="/usr/bin:/bin", GOFLAGS="")
    subprocess.run([go, "build", "-o", "configv2", "main.go"], cwd=src, env=env, check=True)

    def read(text: str) -> dict:
        out = subprocess.run(
            [src / "configv2"], input=text, capture_output=True, text=True, check=True
        )
        return json.loads(out.stdout)

    return read


BUILD = "build:\n  steps:\n    - script:\n        code: make\n"


def test_a_repeated_top_level_key_keeps_the_later_value(wercker_config):
    text = "command-timeout: 30\n" + BUILD + "command-timeout: 45\n"
    assert wercker_config(text)["command_timeout"] == 45
    assert parse_plan(text, "wercker.yml").command_timeout == 45 * 60


@pytest.mark.parametrize("value", ["thirty", "[30]", "{minutes: 30}"])
def test_a_timeout_that_is_not_a_number_is_dropped(wercker_config, value):
    text = f"command-timeout: {value}\n" + BUILD
    assert wercker_config(text)["command_timeout"] == 0  # 0: wercker's default
    assert parse_plan(text, "wercker.yml").command_timeout == DEFAULT_COMMAND_TIMEOUT


@pytest.mark.parametrize("value", ["redis", "{id: redis}"])
def test_top_level_services_that_are_not_a_list_are_dropped(wercker_config, value):
    text = f"services: {value}\n" + BUILD
    assert wercker_config(text)["services"] == 0
    assert parse_plan(text, "wercker.yml").services == ()


WORKFLOW = """\
unit:
  steps:
    - script: {code: make unit}
workflows:
  - name: ci
    pipelines:
      - {name: build}
      - {name: unit, requires: build}
"""


def test_requires_written_as_one_name_is_read_as_that_name_with_a_warning(wercker_config):
    """yaml.v2 could not make a list of it: wercker saw no requirement, so two roots."""
    text = BUILD + WORKFLOW
    assert wercker_config(text)["requires"] == {"build": [], "unit": []}
    plan = parse_plan(text, "wercker.yml")
    assert plan.workflows[0].pipelines[1].requires == ("build",)
    assert [w.split(": warning: ")[1] for w in plan.warnings] == [
        "workflow 'ci': 'requires' of 'unit' should be a list ([build]); wercker read "
        "this text as no requirement and refused the workflow for its several root pipelines; "
        "scratchd reads it as [build]"
    ]


def test_a_workflow_pipeline_written_as_one_name_is_read_as_that_name_with_a_warning(
    wercker_config,
):
    """yaml.v2 could not make wercker's struct of it and left it out of the list."""
    text = BUILD + "workflows:\n  - name: ci\n    pipelines:\n      - build\n"
    assert wercker_config(text)["names"] == []
    plan = parse_plan(text, "wercker.yml")
    assert plan.workflows[0].pipelines[0].name == "build"
    assert [w.split(": warning: ")[1] for w in plan.warnings] == [
        "a pipeline of workflow 'ci' should be a map ({name: build}); wercker could not read "
        "this text and left the pipeline out of the workflow; scratchd reads it as "
        "{name: build}"
    ]
