"""The package imports and the CLI answers; the test services come up."""

import subprocess
import sys

import requests


def test_python_m_scratchd_prints_version():
    out = subprocess.run(
        [sys.executable, "-m", "scratchd", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.startswith("scratchd ")


def test_registry_fixture_serves_v2(registry):
    assert requests.get(f"{registry.url}/v2/", timeout=5).status_code == 200


def test_busybox_box_runs(docker_client, busybox_box):
    out = docker_client.containers.run(busybox_box, ["echo", "hello from box"], remove=True)
    assert out == b"hello from box\n"
