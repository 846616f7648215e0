"""internal/docker-scratch-push through the executor, judged by skopeo and the registry."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from scratchd.models import BuildStatus, CommitInfo, Secret
from scratchd.pipeline.plan import Pipeline, Plan, Step
from scratchd.runner.executor import Executor
from scratchd.runner.host import HostBackend
from scratchd.runner.steps.publish import registry_client_factory
from tests.runner.conftest import compiled
from tests.support.services import run_registry, unavailable

COMMIT = CommitInfo(
    sha="89abcdef0123456789abcdef0123456789abcdef",
    branch="main",
    repo="app",
    commit_time=1_700_000_123,
    remote_url="https://git.example.org/acme/app",
    domain="git.example.org",
    owner="acme",
    repository="app",
)
PASSWORD = "pw-Secret-77-xyz"


def skopeo(*args: str) -> str:
    if shutil.which("skopeo") is None:
        unavailable("skopeo is not installed (apt-get install skopeo)")
    out = subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def build(tmp: Path, push_props, *, secrets=None, image_store=None, lines=None, commit=COMMIT):
    source = tmp / "source"
    source.mkdir(exist_ok=True)
    (source / "hello.sh").write_text("#!/bin/sh\necho hello\n")
    plan = Plan(
        path="wercker.yml",
        pipelines=(
            Pipeline(
                "build",
                steps=(Step("script", "copy", code="set -e\ncp hello.sh $WERCKER_OUTPUT_DIR/"),),
            ),
            Pipeline("deploy", steps=(Step("internal/docker-scratch-push", "push", push_props),)),
        ),
    )
    executor = Executor(
        lambda kind: HostBackend(),
        (lines.append if lines is not None else None),
        registry_client_factory=registry_client_factory(),
        image_store=image_store,
    )
    n = len(list(tmp.glob("work*")))
    build, masker = compiled(
        plan,
        commit=commit,
        source=source,
        work_dir=tmp / f"work{n}",
        cache_dir=tmp / "cache",
        executor="host",
        secrets=secrets or {},
    )
    return executor.run(build, threading.Event(), masker)


def test_push_to_registry_with_options_and_commit_metadata(tmp_path, registry):
    props = (
        ("repository", f"{registry.host}/acme/app"),
        ("tag", "$WERCKER_GIT_COMMIT, v1 latest"),
        ("cmd", "./hello.sh --loud"),
        ("ports", "5000, 8080/udp"),
        ("env", "MODE=prod GREETING='hi there'"),
        ("labels", "team=web"),
        ("working-dir", "/"),
        ("user", "65534"),
        ("stopsignal", "SIGINT"),
    )
    result = build(tmp_path, props)
    assert result.status == BuildStatus.PASSED, result.output
    (digest,) = result.digests
    for tag in (COMMIT.sha, "v1", "latest"):
        inspect = json.loads(
            skopeo("inspect", "--tls-verify=false", f"docker://{registry.host}/acme/app:{tag}")
        )
        assert inspect["Digest"] == digest
    config = json.loads(
        skopeo("inspect", "--tls-verify=false", "--config", f"docker://{registry.host}/acme/app:v1")
    )
    assert config["created"].startswith("2023-11-14T22:")  # the commit time, not now
    cfg = config["config"]
    assert cfg["Cmd"] == ["./hello.sh", "--loud"]
    assert set(cfg["ExposedPorts"]) == {"5000/tcp", "8080/udp"}
    assert "GREETING=hi there" in cfg["Env"] and "MODE=prod" in cfg["Env"]
    assert cfg["Labels"]["team"] == "web"
    assert cfg["Labels"]["org.opencontainers.image.revision"] == COMMIT.sha
    assert (cfg["User"], cfg["StopSignal"]) == ("65534", "SIGINT")
    # the same commit bakes to the same digest
    again = build(tmp_path, props)
    assert again.digests == (digest,)


@pytest.fixture
def auth_registry(tmp_path):
    if shutil.which("htpasswd") is None:
        unavailable("htpasswd is not installed (apt-get install apache2-utils)")
    htpasswd = tmp_path / "htpasswd"
    line = subprocess.run(
        ["htpasswd", "-Bbn", "ci", PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    htpasswd.write_text(line)
    auth = f"auth:\n  htpasswd:\n    realm: scratchd-test\n    path: {htpasswd}\n"
    with run_registry(tmp_path / "registry", auth=auth) as reg:
        yield reg


def test_credentials_from_secrets_and_wrong_password_fails_masked(tmp_path, auth_registry):
    props = (
        ("repository", f"{auth_registry.host}/acme/app"),
        ("username", "$REG_USER"),
        ("password", "$REG_PASSWORD"),
        ("tag", "$WERCKER_GIT_COMMIT"),
    )
    lines: list = []
    ok = build(
        tmp_path,
        props,
        secrets={"REG_USER": Secret("ci"), "REG_PASSWORD": Secret(PASSWORD)},
        lines=lines,
    )
    assert ok.status == BuildStatus.PASSED, ok.output
    skopeo(
        "inspect",
        "--tls-verify=false",
        f"--creds=ci:{PASSWORD}",
        f"docker://{auth_registry.host}/acme/app:{COMMIT.sha}",
    )
    wrong = "not-the-password-123"
    bad = build(
        tmp_path,
        (*props[:2], ("password", wrong), props[3]),
        lines=lines,
    )
    assert bad.status == BuildStatus.FAILED and bad.failed_step == "push"
    text = bad.output + bad.message + "".join(repr(ln) for ln in lines) + ok.output
    assert wrong not in text and PASSWORD not in text


def test_without_repository_the_image_goes_to_the_local_store(tmp_path):
    store = tmp_path / "images"
    result = build(tmp_path, (("tag", "v2"), ("cmd", "./hello.sh")), image_store=store)
    assert result.status == BuildStatus.PASSED, result.output
    inspect = json.loads(skopeo("inspect", f"oci:{store}:v2"))
    assert inspect["Digest"] == result.digests[0]


def test_a_token_in_the_remote_url_stays_out_of_the_image_config(tmp_path):
    """The source label is public with the image: the URL's userinfo is dropped."""
    from dataclasses import replace

    store = tmp_path / "images"
    commit = replace(COMMIT, remote_url="https://ci:glpat-Remote-Token-77@git.example.org/a.git")
    result = build(tmp_path, (("tag", "v3"),), image_store=store, commit=commit)
    assert result.status == BuildStatus.PASSED, result.output
    config = skopeo("inspect", "--config", f"oci:{store}:v3")
    assert "glpat-Remote-Token-77" not in config
    labels = json.loads(config)["config"]["Labels"]
    assert labels["org.opencontainers.image.source"] == "https://git.example.org/a.git"


def test_without_repository_or_store_the_step_fails_clearly(tmp_path):
    result = build(tmp_path, (("tag", "v2"),))
    assert result.status == BuildStatus.FAILED
    assert "no 'repository' option and no local image store" in result.message
