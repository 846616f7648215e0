"""The compile step: wercker.yml + settings + secrets + commit → a typed BuildPlan."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchd.errors import PipelineError, PipelineSyntaxError, StepCompileError
from scratchd.models import CommitInfo, Secret
from scratchd.pipeline import buildplan as bp
from scratchd.pipeline.compile import CompileInput, compile_build

COMMIT = CommitInfo(sha="ab" * 20, branch="main", repo="cities", commit_time=1_700_000_000)


def compile_text(tmp_path: Path, text: str, **kw) -> bp.BuildPlan:
    source = tmp_path / "source"
    source.mkdir(exist_ok=True)
    inp = CompileInput(
        text=text,
        path="repo/wercker.yml",
        commit=COMMIT,
        source=source,
        work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
        **kw,
    )
    return compile_build(inp)


def step_dir(tmp_path: Path, rel: str, step_yml: str | None = None) -> Path:
    d = tmp_path / "source" / rel
    d.mkdir(parents=True)
    (d / "run.sh").write_text("echo hi\n")
    if step_yml is not None:
        (d / "step.yml").write_text(step_yml)
    return d


YML = """\
box: alpine:3.19
command-timeout: 10
build:
  steps:
    - script:
        name: make
        code: make
        cwd: sub
    - internal/watch
  after-steps:
    - script:
        code: echo after
deploy:
  steps:
    - internal/docker-scratch-push:
        repository: quay.io/acme/app
        password: $REG_PASS
    - internal/docker-push:
        repository: quay.io/acme/other
    - internal/docker-build:
        image-name: local/app
"""


def test_every_step_becomes_a_typed_value_with_its_options(tmp_path):
    plan = compile_text(tmp_path, YML)
    build, deploy = plan.pipelines
    make, watch = build.steps
    assert isinstance(make, bp.ScriptStep) and make.name == "make" and make.cwd == "sub"
    assert make.code.startswith("set -e") and "make" in make.code
    assert isinstance(watch, bp.SkippedStep) and "wercker dev" in watch.reason
    assert isinstance(build.after_steps[0], bp.ScriptStep)
    push, dpush, dbuild = deploy.steps
    assert isinstance(push, bp.ScratchPushStep) and push.prop("repository") == "quay.io/acme/app"
    assert push.prop("password") == "$REG_PASS" and push.is_secret("password")
    assert isinstance(dpush, bp.DockerPushStep) and isinstance(dbuild, bp.DockerBuildStep)
    assert build.box is not None and build.box.image == "alpine:3.19"
    assert plan.command_timeout == 600


def test_environment_is_resolved_per_pipeline_with_env_and_secrets(tmp_path):
    plan = compile_text(
        tmp_path, YML, env={"USER_VAR": "u"}, secrets={"REG_PASS": Secret("pw-secret-1")}
    )
    build, deploy = plan.pipelines
    assert build.env["BUILD"] == "true" and "DEPLOY" not in build.env
    assert deploy.env["DEPLOY"] == "true" and deploy.env["WERCKER_DEPLOY_ID"]
    assert build.env["WERCKER_GIT_COMMIT"] == COMMIT.sha and build.env["USER_VAR"] == "u"
    assert build.env["WERCKER_RUN_ID"] == deploy.env["WERCKER_RUN_ID"] == plan.run_id
    # the password option expands to the secret: the masker must learn both
    assert "pw-secret-1" in plan.secret_values()


def test_password_given_through_env_is_a_secret_value(tmp_path):
    plan = compile_text(tmp_path, YML, env={"REG_PASS": "env-pass-777"})
    assert plan.secret_values() == ("env-pass-777",)


def test_local_step_yml_is_read_at_compile_time(tmp_path):
    directory = step_dir(
        tmp_path,
        "steps/greet",
        "name: greet\nproperties:\n  who:\n    default: world\n  loud:\n    default: true\n",
    )
    text = 'build:\n  steps:\n    - greet "file://steps/greet":\n        who: $NAME\n'
    (step,) = compile_text(tmp_path, text).pipelines[0].steps
    assert isinstance(step, bp.LocalStep) and step.directory == directory.resolve()
    assert dict(step.defaults) == {"WERCKER_GREET_WHO": "world", "WERCKER_GREET_LOUD": "true"}
    assert step.properties == (("WERCKER_GREET_WHO", "who"),)


def test_vendored_registry_step_is_found(tmp_path):
    directory = step_dir(tmp_path, ".scratchd/steps/golint")
    (step,) = (
        compile_text(tmp_path, "build:\n  steps:\n    - wercker/golint@1.0.0\n").pipelines[0].steps
    )
    assert isinstance(step, bp.LocalStep) and step.directory == directory.resolve()


def test_bad_step_yml_fails_the_compile_naming_the_step_and_place(tmp_path):
    step_dir(tmp_path, "steps/bad", "properties: [unclosed\n")
    text = 'build:\n  steps:\n    - script:\n        code: "true"\n    - bad "file://steps/bad"\n'
    with pytest.raises(StepCompileError) as info:
        compile_text(tmp_path, text)
    assert str(info.value).startswith("repo/wercker.yml:5:7: ")
    assert "step.yml:2:1: invalid YAML" in str(info.value) and info.value.step == "bad"


def test_unknown_registry_step_is_a_compile_error_at_file_line_col(tmp_path):
    text = "build:\n  steps:\n    - wercker/golint@1.0.0\n"
    with pytest.raises(PipelineSyntaxError) as info:
        compile_text(tmp_path, text)
    message = str(info.value)
    assert message.startswith("repo/wercker.yml:3:7: ")
    assert "Vendor the step" in message and ".scratchd/steps/golint/" in message


def test_yaml_errors_name_file_line_and_column(tmp_path):
    with pytest.raises(PipelineSyntaxError, match=r"^repo/wercker.yml:2:\d+: "):
        compile_text(tmp_path, "build:\n  steps: nope\n")


def test_pipeline_selection(tmp_path):
    text = "build:\n  steps: [script: {code: a}]\nstaging:\n  steps: [script: {code: b}]\n"
    names = lambda plan: [p.name for p in plan.pipelines]  # noqa: E731
    assert names(compile_text(tmp_path, text)) == ["build"]
    assert names(compile_text(tmp_path, text, pipelines=("staging", "build"))) == [
        "staging",
        "build",
    ]
    assert names(compile_text(tmp_path, text, configured=("build", "deploy"))) == ["build"]
    with pytest.raises(PipelineError, match="no pipeline 'prod'"):
        compile_text(tmp_path, text, pipelines=("prod",))
    with pytest.raises(PipelineError, match="none of the pipelines deploy is defined"):
        compile_text(tmp_path, text, configured=("deploy",))


def test_deploy_target_is_resolved_at_compile_time(tmp_path):
    text = """\
build:
  steps: [script: {code: b}]
deploy:
  steps:
    - script: {name: default, code: d}
  production:
    - script: {name: prod, code: p}
"""
    _, deploy = compile_text(tmp_path, text, deploy_target="production").pipelines
    assert [s.name for s in deploy.steps] == ["prod"]
    assert deploy.env["WERCKER_DEPLOYTARGET_NAME"] == "production"
    _, plain = compile_text(tmp_path, text).pipelines
    assert [s.name for s in plain.steps] == ["default"]


PUSH_WITH_SECRET = """\
deploy:
  steps:
    - internal/docker-push:
        repository: quay.io/acme/app
        labels: build-token=${BUILD_TOKEN} commit=$WERCKER_GIT_COMMIT
{extra}"""


def test_a_secret_in_push_labels_is_refused_unless_marked_public(tmp_path):
    secrets = {"BUILD_TOKEN": Secret("tok-secret-99")}
    with pytest.raises(StepCompileError) as caught:
        compile_text(tmp_path, PUSH_WITH_SECRET.replace("{extra}", ""), secrets=secrets)
    message = str(caught.value)
    assert message.startswith("repo/wercker.yml:3:")
    assert "option 'labels' of internal/docker-push puts $BUILD_TOKEN, a secret" in message
    assert "tok-secret-99" not in message
    # the same name from --env is not a secret: compile cannot know (the runner checks values)
    compile_text(tmp_path, PUSH_WITH_SECRET.replace("{extra}", ""), env={"BUILD_TOKEN": "x"})
    marked = PUSH_WITH_SECRET.replace("{extra}", "        public-labels: true\n")
    (step,) = compile_text(tmp_path, marked, secrets=secrets).pipelines[0].steps
    assert step.is_public("labels") and not step.is_public("env")
