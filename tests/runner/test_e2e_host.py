"""The seed scenario on the host executor, end to end through ``scratchd build``.

A repository holds a tiny Go HTTP server; its wercker.yml compiles it with
Debian's Go (offline), copies the binary to the output dir, and the deploy
pipeline scratch-pushes it to a password-protected registry with
credentials from a secrets file. Docker then pulls and runs the image, and
the server answers over HTTP.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
import requests

from scratchd.cli import main
from tests.git.repos import WorkRepo, git
from tests.support.services import free_port, run_registry, unavailable, wait_for

# Secrets-file values must be long enough to mask (3+ characters), usernames too.
USERNAME = "ci-robot"
PASSWORD = "e2e-Registry-Pass-31"

MAIN_GO = """\
package main

import (
\t"fmt"
\t"net/http"
)

func main() {
\thttp.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
\t\tfmt.Fprintln(w, "hello from scratchd")
\t})
\thttp.ListenAndServe(":5000", nil)
}
"""

WERCKER_YML = """\
box: golang
build:
  steps:
    - script:
        name: go build
        code: |
          go version
          CGO_ENABLED=0 go build -a -ldflags '-s' -installsuffix cgo -o app .
          cp app "$WERCKER_OUTPUT_DIR"
deploy:
  steps:
    - internal/docker-scratch-push:
        username: $REGISTRY_USERNAME
        password: $REGISTRY_PASSWORD
        cmd: ./app
        ports: "5000"
        tag: $WERCKER_GIT_COMMIT
        repository: {repository}
  after-steps:
    - script:
        name: report
        code: echo "deploy $WERCKER_RESULT"
"""


@pytest.fixture
def auth_registry(tmp_path):
    if shutil.which("htpasswd") is None:
        unavailable("htpasswd is not installed (apt-get install apache2-utils)")
    line = subprocess.run(
        ["htpasswd", "-Bbn", USERNAME, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    (tmp_path / "htpasswd").write_text(line)
    auth = f"auth:\n  htpasswd:\n    realm: scratchd-e2e\n    path: {tmp_path / 'htpasswd'}\n"
    with run_registry(tmp_path / "registry", auth=auth) as reg:
        yield reg


def go_env(tmp_path) -> list[str]:
    """Offline, private Go caches: nothing outside tmp_path is written or fetched."""
    if shutil.which("go") is None:
        unavailable("go is not installed (apt-get install golang-go)")
    home = tmp_path / "gohome"
    pairs = {
        "HOME": home,
        "GOCACHE": home / "cache",
        "GOPATH": home / "path",
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
    }
    return [arg for k, v in pairs.items() for arg in ("--env", f"{k}={v}")]


def test_seed_scenario_go_server_pushed_and_served(tmp_path, auth_registry, docker_client, capsys):
    repository = f"{auth_registry.host}/acme/hello"
    repo = WorkRepo(tmp_path / "hello")
    sha = repo.commit(
        "hello server",
        {
            "main.go": MAIN_GO,
            "go.mod": "module example.org/hello\n\ngo 1.19\n",
            "wercker.yml": WERCKER_YML.format(repository=repository),
        },
    )
    # uncommitted edits must not reach the build, and the index stays untouched
    (repo.path / "main.go").write_text("package main\nthis does not compile\n")
    status_before = git(repo.path, "status", "--porcelain")  # (refreshes the index itself)
    index_before = (repo.path / ".git" / "index").stat().st_mtime_ns
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"REGISTRY_USERNAME={USERNAME}\nREGISTRY_PASSWORD='{PASSWORD}'\n")

    code = main(
        [
            "build",
            str(repo.path),
            "--executor",
            "host",
            "--secrets-file",
            str(secrets),
            "--cache-dir",
            str(tmp_path / "cache"),
            *go_env(tmp_path),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert PASSWORD not in out.out + out.err
    assert "--- go build" in out.out and "deploy passed" in out.out
    assert "build passed" in out.out and "digest sha256:" in out.out
    assert (repo.path / ".git" / "index").stat().st_mtime_ns == index_before
    assert git(repo.path, "status", "--porcelain") == status_before

    manifest = registry_manifest(auth_registry, "acme/hello", sha)
    layer_size = sum(layer["size"] for layer in manifest["layers"])
    assert 500_000 < layer_size < 10_000_000, layer_size  # a few MB: one static binary

    answer = run_image(docker_client, repository, sha)
    assert answer == "hello from scratchd\n"


def registry_manifest(registry, name: str, tag: str) -> dict:
    """The platform manifest ``tag`` names (through the image index of an attested push)."""
    response = requests.get(
        f"{registry.url}/v2/{name}/manifests/{tag}",
        auth=(USERNAME, PASSWORD),
        headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json,"
            "application/vnd.oci.image.index.v1+json"
        },
        timeout=10,
    )
    assert response.status_code == 200, response.text
    doc = json.loads(response.content)
    if "manifests" in doc:
        return registry_manifest(registry, name, doc["manifests"][0]["digest"])
    return doc


def run_image(client, repository: str, tag: str) -> str:
    """Pull with docker, run with a loopback port, return the HTTP answer."""
    auth = {"username": USERNAME, "password": PASSWORD}
    client.images.pull(repository, tag=tag, auth_config=auth)
    port = free_port()
    name = f"scratchd-e2e-host-{uuid.uuid4().hex[:8]}"
    container = client.containers.run(
        f"{repository}:{tag}", name=name, detach=True, ports={"5000/tcp": ("127.0.0.1", port)}
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(lambda: requests.get(url, timeout=1).status_code == 200, 30, "the pushed app")
        return requests.get(url, timeout=5).text
    finally:
        container.remove(force=True)
        client.images.remove(f"{repository}:{tag}", force=True)
