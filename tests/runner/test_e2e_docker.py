"""Whole builds on the docker executor with the local busybox box.

The build can't compile Go in busybox, so the app is busybox itself: the
build copies ``/bin/busybox`` and a page into the output dir, the deploy
scratch-pushes them with ``httpd`` as the command, and docker runs it.
Also: services reachable by name, ``internal/docker-push`` and
``internal/docker-build`` pushing through the engine, and the failures a
daemon must tell apart.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
import uuid

import pytest
import requests

from scratchd.models import BuildStatus, CommitInfo, Secret
from scratchd.pipeline.parse import parse_plan
from scratchd.runner.executor import Executor
from scratchd.runner.steps.publish import registry_client_factory
from tests.runner.conftest import compiled, docker_leftovers
from tests.support.services import free_port, wait_for

SHA = "fedcba9876543210fedcba9876543210fedcba98"
COMMIT = CommitInfo(
    sha=SHA, branch="main", repo="bb", commit_time=1_700_000_000, owner="acme", repository="bb"
)


class Builds:
    """Runs wercker.yml texts on labelled docker backends and keeps their output."""

    def __init__(self, tmp_path, new_docker_backend) -> None:
        self.tmp = tmp_path
        self.source = tmp_path / "source"
        self.source.mkdir()
        self.new_backend = new_docker_backend
        self.lines: list = []
        self.count = 0

    def __call__(self, yml: str, *, cancel=None, backend_kw=None, edit=None, **kw):
        self.count += 1
        executor = Executor(
            lambda kind: self.new_backend(**(backend_kw or {})),
            self.lines.append,
            registry_client_factory=registry_client_factory(),
        )
        build, masker = compiled(
            (edit or (lambda p: p))(parse_plan(yml, "wercker.yml")),
            commit=COMMIT,
            source=self.source,
            work_dir=self.tmp / f"work{self.count}",
            cache_dir=self.tmp / "cache",
            executor="docker",
            **kw,
        )
        return executor.run(build, cancel or threading.Event(), masker)

    def stdout(self, step: str) -> list[str]:
        return [ln.text for ln in self.lines if ln.step == step and ln.stream == "stdout"]


@pytest.fixture
def builds(tmp_path, new_docker_backend) -> Builds:
    return Builds(tmp_path, new_docker_backend)


def run_and_get(client, ref: str, port_in: int = 5000, path: str = "/") -> str:
    port = free_port()
    container = client.containers.run(
        ref,
        name=f"scratchd-e2e-docker-{uuid.uuid4().hex[:8]}",
        detach=True,
        ports={f"{port_in}/tcp": ("127.0.0.1", port)},
    )
    try:
        url = f"http://127.0.0.1:{port}{path}"
        wait_for(lambda: requests.get(url, timeout=1).status_code == 200, 30, ref)
        return requests.get(url, timeout=5).text
    finally:
        container.remove(force=True)


def output_of(client, ref: str) -> str:
    name = f"scratchd-e2e-docker-{uuid.uuid4().hex[:8]}"
    try:
        return client.containers.run(ref, name=name).decode()
    finally:
        client.containers.get(name).remove(force=True)


SEED = """\
box: {box}
build:
  services:
    - id: {box}
      name: web
      ports: ["8080"]
      cmd: >-
        sh -c 'mkdir -p /www && echo from-service > /www/index.html
        && exec httpd -f -p 8080 -h /www'
  steps:
    - script:
        name: use service
        code: |
          i=0; until wget -q -O - http://web:8080/; do i=$((i+1)); [ $i -lt 50 ]; sleep 0.1; done
          echo "addr=$WEB_PORT_8080_TCP_ADDR"
    - script:
        name: assemble
        code: |
          cp /bin/busybox "$WERCKER_OUTPUT_DIR/busybox"
          mkdir -p "$WERCKER_OUTPUT_DIR/www"
          echo "hello from $WERCKER_GIT_COMMIT" > "$WERCKER_OUTPUT_DIR/www/index.html"
deploy:
  steps:
    - script:
        name: look
        code: ls "$WERCKER_ROOT"; echo "root=$WERCKER_ROOT"
    - acme/announce@1.0.0:
        message: shipping $WERCKER_GIT_BRANCH
    - internal/docker-scratch-push:
        cmd: /busybox httpd -f -p 5000 -h /www
        ports: "5000"
        tag: $WERCKER_GIT_COMMIT
        repository: {registry}/acme/bb
"""


def test_seed_flow_on_docker_with_a_service(builds, busybox_box, registry, docker_client):
    step = builds.source / ".scratchd" / "steps" / "announce"
    step.mkdir(parents=True)
    (step / "run.sh").write_text('echo "$WERCKER_ANNOUNCE_MESSAGE from $WERCKER_STEP_ROOT"\n')
    result = builds(SEED.format(box=busybox_box, registry=registry.host))
    assert result.status == BuildStatus.PASSED, result.output
    service = builds.stdout("use service")
    assert service[0] == "from-service" and service[1].startswith("addr=")
    assert builds.stdout("look") == ["busybox", "www", "root=/pipeline/source"]
    (announce,) = builds.stdout("announce")  # vendored, staged into the cache for deploy
    assert announce.startswith("shipping main from /pipeline/cache/.scratchd-steps/")
    ref = f"{registry.host}/acme/bb:{SHA}"
    docker_client.images.pull(f"{registry.host}/acme/bb", tag=SHA)
    try:
        assert run_and_get(docker_client, ref) == f"hello from {SHA}\n"
    finally:
        docker_client.images.remove(ref, force=True)


DOCKER_STEPS = """\
box: {box}
build:
  steps:
    - script:
        name: prepare
        code: |
          mkdir -p /srv && echo "committed $WERCKER_GIT_BRANCH" > /srv/hello.txt
          printf 'FROM {box}\\nCOPY note.txt /note.txt\\nCMD ["cat", "/note.txt"]\\n' > Dockerfile
          echo built-by-dockerfile > note.txt
    - internal/docker-push:
        repository: {registry}/acme/committed
        tag: v1 $WERCKER_GIT_COMMIT
        cmd: cat /srv/hello.txt
    - internal/docker-build:
        image-name: scratchd-e2e-built-{suffix}
    - internal/docker-push:
        image-name: scratchd-e2e-built-{suffix}
        repository: {registry}/acme/built
        tag: v1
"""


def test_docker_push_commits_the_container_and_docker_build_pushes(
    builds, busybox_box, registry, docker_client
):
    suffix = uuid.uuid4().hex[:8]
    yml = DOCKER_STEPS.format(box=busybox_box, registry=registry.host, suffix=suffix)
    try:
        result = builds(yml)
        assert result.status == BuildStatus.PASSED, result.output
        assert len(result.digests) == 2 and all(d.startswith("sha256:") for d in result.digests)
        for name, expected in (
            ("committed", "committed main\n"),
            ("built", "built-by-dockerfile\n"),
        ):
            ref = f"{registry.host}/acme/{name}:v1"
            docker_client.images.pull(f"{registry.host}/acme/{name}", tag="v1")
            assert output_of(docker_client, ref) == expected
            pushed = docker_client.images.get(ref).attrs["RepoDigests"]
            assert any(d.endswith(result.digests[0 if name == "committed" else 1]) for d in pushed)
    finally:
        for ref in (
            f"scratchd-e2e-built-{suffix}",
            f"{registry.host}/acme/committed:v1",
            f"{registry.host}/acme/built:v1",
        ):
            with contextlib.suppress(Exception):  # already gone is fine
                docker_client.images.remove(ref, force=True)


FAILING = """\
box: {box}
build:
  steps:
    - script:
        name: secret user
        code: echo "token is $API_TOKEN"; echo "$API_TOKEN" >&2
    - script:
        name: boom
        code: echo going down; exit 3
    - script:
        name: never
        code: echo never
  after-steps:
    - script:
        name: after
        code: echo "result=$WERCKER_RESULT step=$WERCKER_FAILED_STEP_DISPLAY_NAME"
"""


def test_failing_step_on_docker_runs_after_steps_and_masks_secrets(
    builds, busybox_box, docker_client, docker_labels
):
    token = "tok-" + uuid.uuid4().hex
    result = builds(FAILING.format(box=busybox_box), secrets={"API_TOKEN": Secret(token)})
    assert result.status == BuildStatus.FAILED
    assert (result.failed_step, result.exit_code) == ("boom", 3)
    assert builds.stdout("never") == []
    assert builds.stdout("after") == ["result=failed step=boom"]
    assert builds.stdout("secret user") == ["token is ***"]
    assert token not in result.output + "".join(repr(ln) for ln in builds.lines)
    assert docker_leftovers(docker_client, docker_labels) == []


def one_step(box: str, name: str, code: str) -> str:
    return (
        f"box: {box}\nbuild:\n  steps:\n    - script:\n        name: {name}\n        code: {code}\n"
    )


def test_cancel_on_docker_removes_everything(builds, busybox_box, docker_client, docker_labels):
    yml = one_step(busybox_box, "long", "echo started; sleep 300")
    cancel = threading.Event()

    def cancel_when_started() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "started" not in builds.stdout("long"):
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    started = time.monotonic()
    result = builds(yml, cancel=cancel, backend_kw={"kill_grace": 1.0})
    assert result.status == BuildStatus.CANCELLED
    assert time.monotonic() - started < 60
    assert docker_leftovers(docker_client, docker_labels) == []


def test_command_timeout_on_docker_fails_the_step(
    builds, busybox_box, docker_client, docker_labels
):
    yml = one_step(busybox_box, "slow", "echo start; sleep 300")
    started = time.monotonic()
    result = builds(
        yml,
        edit=lambda plan: dataclasses.replace(plan, command_timeout=2),
        backend_kw={"kill_grace": 1.0},
    )
    assert time.monotonic() - started < 60
    assert result.status == BuildStatus.FAILED and result.failed_step == "slow"
    assert "timeout" in result.message.lower() or "timed out" in result.message.lower()
    assert docker_leftovers(docker_client, docker_labels) == []


def test_missing_box_image_is_an_infrastructure_error(builds):
    yml = one_step("127.0.0.1:9/scratchd/missing-box:nope", "a", "'true'")
    outcome = builds(yml)  # an outcome, not an exception: an error, never a failed build
    assert outcome.status == BuildStatus.ERROR


def test_engine_down_is_an_infrastructure_error_not_a_failed_build(builds, busybox_box, tmp_path):
    yml = one_step(busybox_box, "a", "'true'")
    outcome = builds(yml, backend_kw={"base_url": f"unix://{tmp_path / 'dead.sock'}"})
    assert outcome.status == BuildStatus.ERROR and outcome.retryable
    assert re.search(r"dead\.sock", outcome.message)
