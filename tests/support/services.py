"""Real services for the test suite: Docker engine, busybox box, registry.

Each helper starts what it needs if it is not running yet. Under ``CI=true``
a service that cannot be had is a test *failure* (``pytest.fail``): CI must
never go green by skipping the tests that talk to real things. On a
developer machine it is a skip with the reason.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

DEFAULT_DOCKER_SOCKET = "/run/scratchd-test/docker.sock"
DOCKER_DATA_ROOT = "/var/lib/scratchd-test-docker"
BUSYBOX_IMAGE = "scratchd-test/busybox:latest"


def unavailable(reason: str) -> None:
    """Fail under CI, skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"required test service unavailable: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout}s")


# -- Docker engine ---------------------------------------------------------


def docker_host() -> str:
    """The DOCKER_HOST tests use; starts a private dockerd if none answers."""
    host = os.environ.get("DOCKER_HOST") or f"unix://{DEFAULT_DOCKER_SOCKET}"
    if _docker_answers(host):
        return host
    if not host.startswith(f"unix://{DEFAULT_DOCKER_SOCKET}"):
        unavailable(f"DOCKER_HOST={host} does not answer")
    if shutil.which("dockerd") is None:
        unavailable("dockerd is not installed (apt-get install docker.io)")
    Path(DEFAULT_DOCKER_SOCKET).parent.mkdir(parents=True, exist_ok=True)
    with open(DEFAULT_DOCKER_SOCKET + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _docker_answers(host):
            _start_dockerd()
            try:
                wait_for(lambda: _docker_answers(host), 60, "dockerd")
            except TimeoutError as exc:
                unavailable(str(exc))
    return host


def _start_dockerd() -> None:
    run_dir = Path(DEFAULT_DOCKER_SOCKET).parent
    log = open(run_dir / "dockerd.log", "ab")  # noqa: SIM115 - outlives this call
    subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            DOCKER_DATA_ROOT,
            "--exec-root",
            str(run_dir / "exec"),
            "--pidfile",
            str(run_dir / "docker.pid"),
            "--host",
            f"unix://{DEFAULT_DOCKER_SOCKET}",
        ],
        stdout=log,
        stderr=log,
        start_new_session=True,
    )


def _docker_answers(host: str) -> bool:
    path = host.removeprefix("unix://")
    if not os.path.exists(path):
        return False
    try:
        sock = socket.socket(socket.AF_UNIX)
        sock.settimeout(2)
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
        return b"200 OK" in sock.recv(256)
    except OSError:
        return False
    finally:
        sock.close()


def busybox_image(client, tmp_dir: Path) -> str:
    """A tiny box image made offline from Debian's static busybox."""
    with contextlib.suppress(Exception):
        client.images.get(BUSYBOX_IMAGE)
        return BUSYBOX_IMAGE
    busybox = shutil.which("busybox")
    if busybox is None:
        unavailable("busybox is not installed (apt-get install busybox-static)")
    applets = subprocess.run(
        [busybox, "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    tar_path = tmp_dir / "busybox-rootfs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for d in ("bin", "tmp", "etc", "root", "usr", "usr/bin", "sbin", "var", "home"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if d == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, "bin/busybox")
        for applet in applets:
            if applet == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(info)
        for name, text in {
            "etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
            "etc/group": "root:x:0:\nnogroup:x:65534:\n",
        }.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, fileobj=__import__("io").BytesIO(data))
    repo, tag = BUSYBOX_IMAGE.rsplit(":", 1)
    client.api.import_image(src=str(tar_path), repository=repo, tag=tag)
    return BUSYBOX_IMAGE


# -- Registry (Debian's docker-registry, the reference Distribution server) --


@dataclass
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``."""

    host: str
    root: Path
    scheme: str = "http"
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"


def registry_config(root: Path, port: int, extra: str = "") -> str:
    """A minimal registry config; ``extra`` adds top-level YAML (auth, tls)."""
    return (
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        "http:\n"
        f"  addr: 127.0.0.1:{port}\n"
        "  secret: scratchd-test-secret\n" + extra
    )


@contextlib.contextmanager
def run_registry(root: Path, *, auth: str = "", tls: str = "", verify=None) -> Iterator[Registry]:
    """Start ``docker-registry`` on a free loopback port, stop it afterwards.

    ``auth`` is the YAML of the ``auth:`` section (indented body included),
    ``tls`` the YAML lines to put under ``http:`` (``  tls: ...``).
    """
    exe = shutil.which("docker-registry")
    if exe is None:
        unavailable("docker-registry is not installed (apt-get install docker-registry)")
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = registry_config(root, port, tls + auth)
    (root / "config.yml").write_text(config)
    log = open(root / "registry.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([exe, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    registry = Registry(f"127.0.0.1:{port}", root, "https" if tls else "http", proc)
    try:
        wait_for(
            lambda: (
                requests.get(f"{registry.url}/v2/", timeout=1, verify=verify).status_code
                in (200, 401)
            ),
            20,
            "docker-registry",
        )
        yield registry
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
