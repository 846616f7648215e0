"""The rest of wercker's file format on the host executor: workflows, deploy
targets, base-path, and what a failing after-step does to the result."""

from __future__ import annotations

import dataclasses
import json
import textwrap

import pytest

from scratchd.cli import main
from scratchd.config.load import load_config
from scratchd.models import BuildStatus
from scratchd.pipeline.parse import parse_plan
from tests.git.repos import WorkRepo
from tests.runner.test_executor import COMMIT, Run


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(tmp_path)


def run_yml(run: Run, yml: str, **kw):
    return run(parse_plan(textwrap.dedent(yml), "wercker.yml"), **kw)


def out(run: Run, step: str) -> list[str]:
    return [ln.text for ln in run.lines if ln.step == step and ln.stream == "stdout"]


WORKFLOWS = """\
build:
  steps:
    - script:
        name: make
        code: echo built > "$WERCKER_OUTPUT_DIR/artifact"
test:
  steps:
    - script:
        name: check
        code: cat artifact; echo tested > "$WERCKER_OUTPUT_DIR/tested"
deploy:
  steps:
    - script:
        name: ship
        code: ls
workflows:
  - name: main
    pipelines:
      - name: build
      - name: test
        requires: build
      - name: deploy
        requires: build
        branches:
          only: [main, release/*]
"""


def test_workflows_run_per_branch_and_each_pipeline_gets_what_it_requires(run):
    result = run_yml(run, WORKFLOWS, configured=("build", "deploy"))  # the config's default
    assert result.status == BuildStatus.PASSED, result.message
    assert [s.name for s in result.steps] == ["make", "check", "ship"]
    assert out(run, "check") == ["built"]
    # deploy requires build, not test: it works on the build's output, without 'tested'
    assert out(run, "ship") == ["artifact"]

    feature = dataclasses.replace(COMMIT, branch="feature/x")
    result = run_yml(run, WORKFLOWS, commit=feature)
    assert [s.name for s in result.steps] == ["make", "check"]


FAN_IN = """\
build:
  steps:
    - script: {name: compile, code: echo compiled > "$WERCKER_OUTPUT_DIR/binary"}
test:
  steps:
    - script: {name: unit tests, code: echo tested > "$WERCKER_OUTPUT_DIR/report"}
deploy:
  steps:
    - script: {name: publish, code: cat unit/report build/binary}
workflows:
  - name: main
    pipelines:
      - name: deploy
        requires: [unit, build]
      - name: build
      - name: unit
        pipelineName: test
        requires: [build]
"""


def test_a_workflow_fan_in_gets_each_required_output_in_its_own_directory(run):
    """As wercker's cmd/workflow.go did, with the list in any order."""
    result = run_yml(run, FAN_IN)
    assert result.status == BuildStatus.PASSED, result.message
    assert [s.name for s in result.steps] == ["compile", "unit tests", "publish"]
    assert out(run, "publish") == ["tested", "compiled"]


TARGETS = """\
build:
  steps:
    - script:
        name: make
        code: echo built
deploy:
  steps:
    - script:
        name: default deploy
        code: echo default
  production:
    - script:
        name: to production
        code: echo "target=$WERCKER_DEPLOYTARGET_NAME"
"""


def test_a_deploy_target_runs_when_selected(run):
    result = run_yml(run, TARGETS, deploy_target="production")
    assert [s.name for s in result.steps] == ["make", "to production"]
    assert out(run, "to production") == ["target=production"]
    result = run_yml(run, TARGETS)
    assert [s.name for s in result.steps][-1] == "default deploy"


def test_deploy_target_is_a_repository_setting(tmp_path):
    config = tmp_path / "scratchd.toml"
    config.write_text('[[repo]]\nname = "a"\npath = "/a"\ndeploy_target = "production"\n')
    assert load_config(config).repos[0].deploy_target == "production"


def test_scratchd_build_deploy_target(tmp_path, capsys):
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("v1", {"wercker.yml": TARGETS})
    code = main(
        ["build", str(repo.path), "--executor=host", "--json", "--deploy-target", "production",
         f"--cache-dir={tmp_path / 'c'}"]
    )  # fmt: skip
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [s["name"] for s in doc["steps"]] == ["make", "to production"]


def test_lint_lists_the_deploy_targets_a_file_has(tmp_path, capsys):
    (tmp_path / "wercker.yml").write_text(TARGETS)
    code = main(["lint", str(tmp_path / "wercker.yml"), "--pipeline", "deploy"])
    printed = capsys.readouterr().out.splitlines()
    assert code == 0
    assert printed[-2:] == [
        "run deploy: default deploy",
        "  deploy target production: to production",
    ]
    assert "deploy target 'production' of pipeline 'deploy' runs only when selected" in printed[0]


def test_base_path_places_the_source_and_later_steps_work_there(run):
    (run.source / "main.txt").write_text("source file\n")
    result = run_yml(
        run,
        """\
        build:
          base-path: /go/src/example.org/acme/cities
          steps:
            - script:
                name: where
                code: |
                  echo "pwd=$(pwd)"
                  echo "src=$WERCKER_SOURCE_DIR"
                  cat main.txt
        """,
    )
    assert result.status == BuildStatus.PASSED, result.message
    path = f"{run.tmp}/work1/build/base-path/go/src/example.org/acme/cities"
    assert out(run, "where") == [f"pwd={path}", f"src={path}", "source file"]


def test_a_failing_after_step_is_recorded_but_does_not_change_the_result(run):
    """wercker's rule: after-steps report on a pipeline whose result is already decided."""
    result = run_yml(
        run,
        """\
        build:
          steps:
            - script:
                name: make
                code: echo ok
          after-steps:
            - script:
                name: notify
                code: exit 4
        deploy:
          steps:
            - script:
                name: ship
                code: echo shipped
        """,
    )
    assert result.status == BuildStatus.PASSED
    assert [(s.name, s.status, s.after) for s in result.steps] == [
        ("make", "passed", False),
        ("notify", "failed", True),
        ("ship", "passed", False),
    ]
