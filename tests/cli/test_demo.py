"""``scratchd demo``: one command from nothing to a baked image, judged by skopeo and umoci."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from scratchd.demo import choose_payload, is_static_elf
from tests.support.services import unavailable


def demo(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchd", "demo", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def oci_config(layout: Path, tag: str) -> dict:
    out = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{layout}:{tag}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_demo_builds_live_stores_the_image_and_runs_it_in_docker(tmp_path, docker_host):
    done = demo("--dir", str(tmp_path / "demo"), env={"DOCKER_HOST": docker_host})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "payload: hello.c compiled" in out
    assert "stdout build/compile hello.c: building" in out  # streamed step lines
    assert "build 1 passed" in out
    assert "hello from a FROM-scratch image baked by scratchd (commit " in out
    layout = tmp_path / "demo/state/oci"
    tags = subprocess.run(
        ["umoci", "ls", "--layout", str(layout)], capture_output=True, text=True, check=True
    ).stdout.split()
    sha = next(t for t in tags if t != "latest")
    assert sorted(tags) == sorted([sha, "latest"])
    config = oci_config(layout, sha)
    assert config["config"]["Cmd"] == ["/hello"]
    assert f"COMMIT={sha}" in config["config"]["Env"]
    assert f"skopeo inspect oci:{layout}:latest" in out
    images = subprocess.run(
        ["docker", "-H", docker_host, "images", "-q", "scratchd-demo/hello"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert images.stdout.strip() == ""  # loaded, run, and removed again


def test_demo_with_busybox_payload_and_no_docker(tmp_path):
    if not Path("/bin/busybox").is_file() or not is_static_elf(Path("/bin/busybox")):
        unavailable("no static /bin/busybox (apt-get install busybox-static)")
    done = demo("--dir", str(tmp_path / "demo"), "--payload", "busybox", "--no-docker")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "docker run" not in done.stdout
    # The demo started the web page (it answered /healthz before this line was printed).
    assert re.search(r"==> web page: http://127\.0\.0\.1:\d+ ", done.stdout), done.stdout
    layout = tmp_path / "demo/state/oci"
    assert oci_config(layout, "latest")["config"]["Cmd"][:2] == ["/busybox", "echo"]
    bundle = tmp_path / "bundle"
    subprocess.run(
        ["umoci", "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle)],
        capture_output=True,
        check=True,
    )
    assert (bundle / "rootfs/busybox").read_bytes() == Path("/bin/busybox").read_bytes()


def test_demo_refuses_a_directory_already_used(tmp_path):
    (tmp_path / "hello").mkdir()
    done = demo("--dir", str(tmp_path), "--no-docker")
    assert done.returncode == 2
    assert done.stderr.strip().endswith("already exists; pass an empty --dir")


def test_static_elf_detection():
    assert is_static_elf(Path("/bin/busybox")) or not Path("/bin/busybox").exists()
    assert not is_static_elf(Path(sys.executable).resolve())  # a dynamic python
    assert "busybox" in choose_payload("busybox").files["wercker.yml"]
