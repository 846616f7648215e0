"""Box images missing locally are pulled, with the box's credentials when it has them."""

from __future__ import annotations

import secrets
import subprocess

import pytest
import requests

from scratchd.errors import BackendError
from scratchd.models import BoxDigest, Secret
from scratchd.pipeline.plan import Box
from tests.runner.conftest import run_step
from tests.support import services


@pytest.fixture
def auth_registry(tmp_path):
    """Debian's docker-registry requiring Basic auth (user ``ci``)."""
    password = "pw-" + secrets.token_hex(8)
    htpasswd = subprocess.run(
        ["htpasswd", "-Bbn", "ci", password], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "htpasswd").write_text(htpasswd)
    auth = f"auth:\n  htpasswd:\n    realm: scratchd-test\n    path: {tmp_path / 'htpasswd'}\n"
    with services.run_registry(tmp_path / "registry", auth=auth) as reg:
        yield reg, password


@pytest.fixture
def pushed_box(docker_client, busybox_box, auth_registry):
    """The busybox box pushed to the auth registry and then removed from the engine."""
    reg, password = auth_registry
    repo = f"{reg.host}/scratchd-test/box-{secrets.token_hex(4)}"
    docker_client.images.get(busybox_box).tag(repo, "v1")
    try:
        for event in docker_client.images.push(
            repo,
            "v1",
            stream=True,
            decode=True,
            auth_config={"username": "ci", "password": password},
        ):
            assert "error" not in event, event
    finally:
        docker_client.images.remove(f"{repo}:v1")
    yield repo, password
    # Untag only: the image id is the shared busybox box's, which must stay.
    if docker_client.images.list(name=repo):
        docker_client.images.remove(f"{repo}:v1")


def test_missing_box_is_pulled_with_its_credentials(
    new_docker_backend, make_pipeline_job, pushed_box, docker_client
):
    repo, password = pushed_box
    b = new_docker_backend()
    box = Box(id=repo, tag="v1", username="ci", password=Secret(password))
    b.setup(make_pipeline_job(box=box))
    assert run_step(b, "echo pulled")[1].of("stdout") == ["pulled"]
    assert docker_client.images.get(f"{repo}:v1")


def test_bad_credentials_are_a_backend_error_that_hides_the_password(
    new_docker_backend, make_pipeline_job, pushed_box
):
    repo, _ = pushed_box
    b = new_docker_backend()
    wrong = "wrong-" + secrets.token_hex(6)
    with pytest.raises(BackendError, match=r"box-\w+:v1 is not available locally") as info:
        b.setup(make_pipeline_job(box=Box(id=repo, tag="v1", username="ci", password=wrong)))
    assert wrong not in str(info.value)
    b.teardown()


def test_pulled_box_reports_the_registry_manifest_digest(
    new_docker_backend, make_pipeline_job, pushed_box
):
    """A box named by tag: the provenance needs what the tag pointed at when it ran."""
    repo, password = pushed_box
    b = new_docker_backend()
    b.setup(make_pipeline_job(box=Box(id=repo, tag="v1", username="ci", password=Secret(password))))
    host, _, path = repo.partition("/")
    answer = requests.head(
        f"http://{host}/v2/{path}/manifests/v1", auth=("ci", password), timeout=10,
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )  # fmt: skip
    assert b.box_images() == (BoxDigest(f"{repo}:v1", answer.headers["Docker-Content-Digest"]),)


def test_local_box_reports_its_image_id_and_says_so(
    new_docker_backend, make_pipeline_job, busybox_box, docker_client
):
    """A box that was never pulled has no manifest digest: its image ID, marked as such."""
    assert docker_client.images.get(busybox_box).attrs["RepoDigests"] == []
    b = new_docker_backend()
    b.setup(make_pipeline_job(box=Box(id=busybox_box)))
    image_id = docker_client.images.get(busybox_box).id
    assert b.box_images() == (BoxDigest(busybox_box, image_id, "image-id"),)
