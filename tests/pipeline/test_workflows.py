"""``workflows`` read and run as ``wercker workflow`` did (core/config.go, cmd/workflow.go)."""

from __future__ import annotations

import pytest

from scratchd.errors import PipelineSyntaxError
from scratchd.pipeline.parse import parse_plan
from scratchd.pipeline.selection import select
from scratchd.pipeline.workflows import fan_in, required_source

PIPELINES = "".join(
    f"{name}:\n  steps:\n    - script:\n        code: echo {name}\n"
    for name in ("build", "test", "lint", "deploy")
)


def plan_of(workflow: str):
    return parse_plan(PIPELINES + "workflows:\n" + workflow, "wercker.yml")


def test_a_pipeline_listed_before_what_it_requires_runs_after_it():
    """wercker ran the first listed pipeline whose requirements had run, again and again."""
    plan = plan_of(
        "  - name: main\n    pipelines:\n"
        "      - name: deploy\n        requires: [test]\n"
        "      - name: test\n        requires: [build]\n"
        "      - name: build\n"
    )
    assert [p.name for p in select(plan, branch="master")] == ["build", "test", "deploy"]
    assert not plan.warnings


def test_a_branch_filter_also_stops_what_requires_the_filtered_pipeline():
    plan = plan_of(
        "  - name: main\n    pipelines:\n"
        "      - name: build\n"
        "      - name: test\n        requires: [build]\n        branches: {ignore: ['feature/*']}\n"
        "      - name: deploy\n        requires: [test]\n"
    )
    assert [p.name for p in select(plan, branch="feature/x")] == ["build"]
    assert [p.name for p in select(plan, branch="master")] == ["build", "test", "deploy"]


def test_artifact_pipeline_chooses_the_source_of_a_fan_in():
    plan = plan_of(
        "  - name: main\n    pipelines:\n"
        "      - name: build\n"
        "      - name: test\n        requires: [build]\n"
        "      - name: lint\n        requires: [build]\n"
        "      - name: deploy\n        requires: [test, lint]\n        artifactPipeline: lint\n"
    )
    assert required_source(plan.workflows, "deploy") == "lint"
    assert fan_in(plan.workflows, "deploy") == ()
    assert required_source(plan.workflows, "test") == "build"
    assert required_source(plan.workflows, "build") == ""
    assert not plan.warnings


def test_a_fan_in_without_artifact_pipeline_gets_every_required_output():
    """cmd/workflow.go: each source pipeline's output in a directory named after it."""
    plan = plan_of(
        "  - name: main\n    pipelines:\n"
        "      - name: build\n"
        "      - name: unit\n        pipelineName: test\n        requires: [build]\n"
        "      - name: deploy\n        requires: [unit, build]\n        envFile: .env\n"
    )
    assert fan_in(plan.workflows, "deploy") == (("unit", "test"), ("build", "build"))
    assert fan_in(plan.workflows, "test") == ()
    assert list(plan.warnings) == [
        "wercker.yml:26:9: warning: unknown key 'envFile' of a pipeline of workflow 'main' is "
        "ignored (known: name, pipelineName, requires, artifactPipeline, branches, branch, "
        "pipeline)",
    ]


@pytest.mark.parametrize(
    ("pipelines", "where", "reason"),
    [
        ("      - name: build\n      - name: build\n", (21, 9), "duplicate pipeline build"),
        (
            "      - name: build\n      - name: docs\n        requires: [build]\n",
            (21, 9),
            "pipeline docs is not defined",
        ),
        (
            "      - name: build\n      - name: test\n        requires: [tests]\n",
            (21, 9),
            "no pipeline tests required by test",
        ),
        (
            "      - name: build\n      - name: test\n",
            (18, 5),
            "multiple root pipelines: build, test",
        ),
        (
            "      - name: test\n        requires: [build]\n      - name: build\n"
            "        requires: [test]\n",
            (18, 5),
            "no root pipeline",
        ),
        (
            "      - name: build\n      - name: test\n        requires: [build, deploy]\n"
            "      - name: deploy\n        requires: [test]\n",
            (18, 5),
            "contains cycle test -> deploy -> test",
        ),
    ],
)
def test_a_workflow_wercker_refused_to_run_is_an_error_with_its_reason(pipelines, where, reason):
    with pytest.raises(PipelineSyntaxError) as info:
        plan_of("  - name: main\n    pipelines:\n" + pipelines)
    assert (info.value.line, info.value.column) == where
    assert info.value.reason == f"invalid workflow 'main': {reason} (wercker refused to run it)"
