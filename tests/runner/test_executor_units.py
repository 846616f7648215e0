"""Small pure pieces of the executor: the output sink, env naming, push targets."""

from __future__ import annotations

import threading

import pytest

from scratchd.errors import ImageOptionError
from scratchd.models import CommitInfo
from scratchd.pipeline.environment import pipeline_env, property_var
from scratchd.redact import Redactor
from scratchd.runner.environment import after_env, step_env
from scratchd.runner.sink import BuildOutput


def test_sink_redacts_before_any_consumer_and_in_kept_lines():
    seen = []
    out = BuildOutput("b1", Redactor(["hunter22"]), [seen.append], clock=lambda: 42.0)
    out.emit("build", "s", "stdout", "pw=hunter22")
    out.add_secrets("late-secret")
    out.emit("build", "s", "stderr", "late-secret and hunter22")
    assert [ln.text for ln in seen] == ["pw=***", "*** and ***"]
    assert out.text() == "pw=***\n*** and ***\n"
    assert seen[0].build_id == "b1" and seen[0].timestamp == 42.0
    assert out.redact("x hunter22 y") == "x *** y"


def test_sink_keeps_only_the_newest_lines_but_consumers_get_all():
    seen = []
    out = BuildOutput("b", Redactor(), [seen.append], keep=3)
    on_line = out.for_step("deploy", "push")
    for i in range(10):
        on_line("stdout", str(i))
    assert [ln.text for ln in out.lines] == ["7", "8", "9"] and out.dropped == 7
    assert len(seen) == 10 and {(ln.pipeline, ln.step) for ln in seen} == {("deploy", "push")}


def test_sink_is_safe_across_threads():
    out = BuildOutput("b", Redactor(), keep=100_000)
    threads = [
        threading.Thread(target=lambda: [out.emit("p", "s", "stdout", "x") for _ in range(500)])
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(out.lines) == 2000


def test_property_var_follows_wercker_naming():
    assert property_var("slack-notify", "webhook-url") == "WERCKER_SLACK_NOTIFY_WEBHOOK_URL"
    assert property_var("go.lint", "x y") == "WERCKER_GO_LINT_X_Y"


def test_pipeline_env_build_vs_deploy_and_extra_cannot_override():
    commit = CommitInfo(sha="c" * 40, branch="dev", repo="r", owner="o", domain="d")
    build = pipeline_env(commit, "build", run_id="r1", pipeline_id="p1", extra={"CI": "no"})
    deploy = pipeline_env(commit, "production", run_id="r1", pipeline_id="p2")
    assert build["CI"] == "true" and build["BUILD"] == "true" and build["WERCKER_BUILD_ID"] == "p1"
    assert "DEPLOY" not in build
    assert deploy["DEPLOY"] == "true" and deploy["WERCKER_DEPLOYTARGET_NAME"] == "production"
    assert deploy["WERCKER_GIT_REPOSITORY"] == "r"  # falls back to the configured name


def test_step_and_after_env():
    env = step_env("id1", "compile", {"WERCKER_REPORT_DIR": "/pipeline/report"})
    assert env["WERCKER_STEP_ID"] == "id1" and env["WERCKER_STEP_NAME"] == "compile"
    assert env["WERCKER_REPORT_MESSAGE_FILE"] == "/pipeline/report/id1/message.txt"
    assert after_env("failed", "boom", "exit 3") == {
        "WERCKER_RESULT": "failed",
        "WERCKER_FAILED_STEP_DISPLAY_NAME": "boom",
        "WERCKER_FAILED_STEP_MESSAGE": "exit 3",
    }


def test_bad_options_name_the_option():
    from scratchd.image.options import parse_ports

    with pytest.raises(ImageOptionError, match="option 'ports'"):
        parse_ports("http", what="internal/docker-scratch-push option 'ports'")
