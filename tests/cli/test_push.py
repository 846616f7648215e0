"""``scratchd push`` and ``scratchd bake --push`` as a user runs them: real processes."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
import sys

import pytest
import requests

from tests.registry.conftest import PASSWORD, USER, run_basic_tls_registry
from tests.registry.servers import Fault, FaultProxy, make_ca
from tests.support import services

PUSH_KEYS = {"repository", "digest", "tags", "bytes_uploaded", "blobs_skipped", "blobs_mounted"}


@pytest.fixture
def env(tmp_path) -> dict:
    """No docker config of the machine leaks in; no SOURCE_DATE_EPOCH either."""
    (tmp_path / "docker-config").mkdir()
    out = {
        k: v for k, v in os.environ.items() if k not in ("SOURCE_DATE_EPOCH", "REGISTRY_AUTH_FILE")
    }
    out["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
    return out


@pytest.fixture
def app_dir(tmp_path):
    busybox = shutil.which("busybox")
    if busybox is None:
        services.unavailable("busybox is not installed (apt-get install busybox-static)")
    root = tmp_path / "out"
    (root / "bin").mkdir(parents=True)
    shutil.copy(busybox, root / "bin" / "busybox")
    (root / "greeting").write_text(f"hello {tmp_path.name}\n")
    return root


@pytest.fixture
def tls_files(tmp_path):
    return make_ca(tmp_path / "tls")


@pytest.fixture
def basic_tls_registry(tmp_path, tls_files):
    with run_basic_tls_registry(tmp_path / "basic", tls_files) as registry:
        yield registry


def scratchd(*args: str, env: dict, stdin: str = "", **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "scratchd", *args],
        input=stdin, capture_output=True, text=True, env=env, timeout=180, **kwargs,
    )  # fmt: skip


def _digest_of(registry_url: str, repository: str, tag: str, **kwargs) -> str | None:
    got = requests.head(
        f"{registry_url}/v2/{repository}/manifests/{tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json,"
                 "application/vnd.oci.image.manifest.v1+json,"
                 "application/vnd.oci.image.index.v1+json"},  # attested pushes are indexes
        timeout=10, **kwargs,
    )  # fmt: skip
    return got.headers.get("Docker-Content-Digest") if got.status_code == 200 else None


def test_bake_push_json_and_docker_run(registry, app_dir, env, docker_client):
    repo = f"{registry.host}/cli/app"
    result = scratchd(
        "bake", str(app_dir), "--cmd", "/bin/busybox cat /greeting",
        "--push", repo, "--tag", "v1", "--tag", "latest", "--json", env=env,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # --json: no progress output at all
    out = json.loads(result.stdout)
    assert out.keys() >= PUSH_KEYS
    assert out["repository"] == repo and out["tags"] == ["v1", "latest"]
    assert out["bytes_uploaded"] > 0 and out["blobs_skipped"] == out["blobs_mounted"] == 0
    for tag in ("v1", "latest"):
        assert _digest_of(registry.url, "cli/app", tag) == out["digest"]
    try:
        output = docker_client.containers.run(f"{repo}:v1", remove=True)
        assert output.decode() == f"hello {app_dir.parent.name}\n"
    finally:
        docker_client.images.remove(f"{repo}:v1", force=True)


def test_push_an_oci_layout_then_repush_skips_everything(registry, app_dir, env, tmp_path):
    layout = tmp_path / "layout"
    baked = scratchd("bake", str(app_dir), "--oci-layout", str(layout), "--tag", "v7", env=env)
    assert baked.returncode == 0, baked.stderr

    first = scratchd(
        "push", f"{layout}:v7", f"{registry.host}/cli/layout", "--tag", "a, b", env=env
    )
    again = scratchd("push", f"{layout}:v7", f"{registry.host}/cli/layout", "--json", env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == baked.stdout.strip()  # prints the manifest digest
    assert [line.split(":")[1].strip()[:6] for line in first.stderr.splitlines()] == [
        "pushed", "pushed"
    ]  # fmt: skip
    assert _digest_of(registry.url, "cli/layout", "b") == baked.stdout.strip()
    pushed = json.loads(again.stdout)
    assert pushed["bytes_uploaded"] == 0 and pushed["blobs_skipped"] == 2
    assert pushed["tags"] == ["latest"]


def test_password_stdin_over_tls_and_never_echoed(basic_tls_registry, tls_files, app_dir, env):
    reg = basic_tls_registry
    common = [
        "bake",
        str(app_dir),
        "--push",
        f"{reg.host}/cli/auth",
        "--ca-file",
        str(tls_files.ca),
    ]

    ok = scratchd(*common, "--username", USER, "--password-stdin", env=env, stdin=PASSWORD + "\n")
    wrong = scratchd(*common, "--username", USER, "--password-stdin", env=env, stdin="nope-x1\n")

    assert ok.returncode == 0, ok.stderr
    assert _digest_of(
        reg.url, "cli/auth", "latest", auth=(USER, PASSWORD), verify=str(tls_files.ca)
    )
    assert wrong.returncode == 1
    assert wrong.stderr.startswith("scratchd: error: ") and "UNAUTHORIZED" in wrong.stderr
    assert USER in wrong.stderr
    for result in (ok, wrong):
        assert PASSWORD not in result.stdout + result.stderr
        assert "nope-x1" not in result.stdout + result.stderr


def test_permanent_failure_exits_non_zero_and_leaves_no_tag(registry, app_dir, env):
    proxy = FaultProxy(registry.host)
    proxy.add(Fault("PUT", r"/blobs/uploads/.*digest=", status=500, times=1000))
    with proxy.running():
        result = scratchd(
            "bake", str(app_dir), "--push", f"{proxy.host}/cli/broken", "--retries", "1", env=env
        )

    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("scratchd: error: ") and "HTTP 500" in last and "gave up" in last
    assert result.stdout == ""
    assert _digest_of(registry.url, "cli/broken", "latest") is None


def test_progress_on_a_terminal_shows_bytes_and_rate(registry, app_dir, env):
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "scratchd", "bake", str(app_dir),
             "--push", f"{registry.host}/cli/tty"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=follower, env=env, timeout=180,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        shown = _drain(leader)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert result.returncode == 0, shown
    assert "\x1b[K" in shown and "/s" in shown and " MB" in shown


def _drain(fd: int) -> str:
    chunks = []
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO once the child's side is closed
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


@pytest.mark.parametrize(
    ("args", "needle", "code"),
    [
        (("push", "/nonexistent-layout", "127.0.0.1:1/x"), "/nonexistent-layout", 1),
        (("push", "LAYOUT", "Bad/Name"), "lowercase", 2),
        (("push", "LAYOUT", "127.0.0.1:1/x", "--password-stdin"), "--username", 2),
        (("push", "LAYOUT", "127.0.0.1:1/x", "--tag=-bad"), "--tag", 2),
    ],
)
def test_bad_input_is_one_clear_line(args, needle, code, env, tmp_path, app_dir):
    layout = tmp_path / "layout"
    scratchd("bake", str(app_dir), "--oci-layout", str(layout), env=env)
    result = scratchd(*(str(layout) if a == "LAYOUT" else a for a in args), env=env)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratchd: error: ") and needle in lines[0]


def test_insecure_registry_push_loads_no_urllib3_and_prints_no_warning(
    basic_tls_registry, app_dir, env
):
    """The registry client speaks http.client; urllib3 is neither needed nor paid for."""
    reg = basic_tls_registry
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "scratchd", "bake", str(app_dir),
         "--push", f"{reg.host}/cli/insecure", "--insecure-registry", reg.host,
         "--username", USER, "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, env=env, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()]
    assert "scratchd.registry.client" in imported  # the trace covers the push
    assert not [name for name in imported if name.split(".")[0] == "urllib3"]
    assert "Warning" not in result.stderr
