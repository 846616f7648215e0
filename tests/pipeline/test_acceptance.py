"""wercker's acceptance rules: lint and the compile step agree on every file.

The corpus (``test_corpus.py``) pins the exact lint output of real-style
files; these tests pin the rules across the two entry points: what lint
calls an error is what the daemon refuses, with the same words, and the
pipelines lint speaks for are the ones a run starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from scratchd.errors import PipelineError, StepCompileError
from scratchd.pipeline.compile import CompileInput, compile_build
from scratchd.pipeline.lint import lint
from tests.pipeline.test_compile import COMMIT, compile_text

CORPUS = Path(__file__).parent / "corpus"


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.yml")), ids=lambda p: p.stem)
def test_every_lint_error_is_a_reason_the_daemon_refuses_and_vice_versa(tmp_path, path):
    text = path.read_text(encoding="utf-8")
    found = lint(text, "repo/wercker.yml")
    errors = [d.format("repo/wercker.yml") for d in found if d.severity == "error"]
    try:
        compile_text(tmp_path, text)
    except PipelineError as exc:
        if isinstance(exc, StepCompileError):
            # whether a step's files are in the checkout is a fact of the commit, not
            # of the file: lint warns ("vendor it", "run.sh does not exist")
            assert not errors
            return
        assert errors and str(exc) == errors[0]
    else:
        assert not errors


def test_a_file_with_nothing_to_run_is_refused_by_both_with_the_same_message(tmp_path):
    text = "box: golang\ndev:\n  steps:\n    - internal/watch\n"
    found = [d.format("repo/wercker.yml") for d in lint(text, "repo/wercker.yml")]
    with pytest.raises(PipelineError) as raised:
        compile_text(tmp_path, text)
    assert (
        found[0]
        == str(raised.value)
        == ("repo/wercker.yml: has neither a 'build' nor a 'deploy' pipeline")
    )


DEV_AND_BUILD = (
    "box: golang\ndev:\n  steps:\n    - internal/watch\n"
    "build:\n  steps:\n    - script:\n        code: make\n"
)


def test_pipelines_that_never_run_are_quiet_unless_asked_for():
    assert lint(DEV_AND_BUILD, "w") == []
    asked = [d.message for d in lint(DEV_AND_BUILD, "w", pipelines=("dev",))]
    assert asked == ["step 'internal/watch' will not run here: it reloads code for 'wercker dev'"]


def test_lint_for_a_missing_pipeline_says_what_the_build_command_says(tmp_path):
    found = [
        d.format("repo/wercker.yml")
        for d in lint(DEV_AND_BUILD, "repo/wercker.yml", None, ("stage",))
    ]
    with pytest.raises(PipelineError) as raised:
        compile_text(tmp_path, DEV_AND_BUILD, pipelines=("stage",))
    assert found == [str(raised.value)]


WORKFLOWS = (CORPUS / "34_workflows_branches.yml").read_text()


@pytest.mark.parametrize(
    ("branch", "pipelines"),
    [("master", ["build", "push-image", "deploy-prod"]), ("feature/x", ["build", "push-image"])],
)
def test_workflows_pick_the_pipelines_per_branch_without_a_repo_config(tmp_path, branch, pipelines):
    text = WORKFLOWS.replace("npm-install", "script").replace("npm-test", "script")
    commit = dataclasses.replace(COMMIT, branch=branch)
    source = tmp_path / "source"
    source.mkdir()
    plan = compile_build(
        CompileInput(
            text=text,
            path="wercker.yml",
            commit=commit,
            source=source,
            work_dir=tmp_path / "work",
            cache_dir=tmp_path / "cache",
        )
    )
    assert [p.name for p in plan.pipelines] == pipelines


def test_a_repeated_mistake_is_one_error_naming_every_line():
    text = (CORPUS / "38_nested_pipelines.yml").read_text()
    errors = [d for d in lint(text, "w") if d.severity == "error"]
    assert len(errors) == 1
    assert "pipelines cannot be nested" in errors[0].message
    assert errors[0].message.endswith("(the same on lines 11, 15)")
