"""Fixtures for registry tests: images, TLS + htpasswd and token registries, proxies.

Every registry here is Debian's docker-registry (the reference Distribution
server) on a free loopback port; only the servers around it (token server,
fault proxy) are written in this suite.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from scratchd.image.build import bake
from scratchd.models import ImageSpec
from scratchd.registry.client import RegistryClient
from scratchd.registry.credentials import CredentialStore
from scratchd.registry.retry import RetryPolicy
from tests.registry.servers import FaultProxy, TlsFiles, TokenServer, make_ca, tls_yaml
from tests.support import services

USER, PASSWORD = "ci+robot", "s3cr3t-Pa55w0rd-never-shown"


def fast_retry(attempts: int = 6) -> RetryPolicy:
    """Real backoff arithmetic, tiny numbers: a test waits milliseconds, not seconds."""
    return RetryPolicy(attempts=attempts, base=0.01, cap=0.05, budget=20.0)


def make_client(**kwargs) -> RegistryClient:
    kwargs.setdefault("retry", fast_retry())
    credentials = kwargs.pop("credentials", None) or CredentialStore(environ={})
    return RegistryClient(credentials, **kwargs)


@pytest.fixture
def bake_image(tmp_path):
    """``bake_image(message)``: a runnable busybox image that prints ``message``."""
    busybox = shutil.which("busybox")
    if busybox is None:
        services.unavailable("busybox is not installed (apt-get install busybox-static)")

    def make(message: str = "hello", extra: bytes = b""):
        root = tmp_path / f"root-{uuid.uuid4().hex[:8]}"
        (root / "bin").mkdir(parents=True)
        shutil.copy(busybox, root / "bin" / "busybox")
        (root / "message").write_bytes(message.encode() + extra)
        spec = ImageSpec(cmd=("/bin/busybox", "cat", "/message"), created=1_700_000_000)
        return bake(root, spec, tmp_path / "blobs")

    return make


@pytest.fixture
def tls_files(tmp_path):
    return make_ca(tmp_path / "tls")


@contextlib.contextmanager
def run_basic_tls_registry(directory: Path, tls: TlsFiles):
    """A registry with htpasswd Basic auth over TLS; ``USER``/``PASSWORD`` may push."""
    if shutil.which("htpasswd") is None:
        services.unavailable("htpasswd is not installed (apt-get install apache2-utils)")
    directory.mkdir(parents=True, exist_ok=True)
    htpasswd = directory / "htpasswd"
    line = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True
    ).stdout
    htpasswd.write_text(line)
    auth = f"auth:\n  htpasswd:\n    realm: scratchd-test\n    path: {htpasswd}\n"
    with services.run_registry(
        directory / "registry", auth=auth, tls=tls_yaml(tls), verify=str(tls.ca)
    ) as registry:
        yield registry


@pytest.fixture
def basic_tls_registry(tmp_path, tls_files):
    with run_basic_tls_registry(tmp_path / "basic", tls_files) as registry:
        yield registry


@pytest.fixture
def token_server(tmp_path):
    users = {USER: (PASSWORD, ("pull", "push")), "reader": ("reader-pass", ("pull",))}
    with TokenServer(tmp_path / "token", users).running() as server:
        yield server


@pytest.fixture
def token_registry(tmp_path, token_server):
    with services.run_registry(tmp_path / "registry", auth=token_server.auth_yaml()) as registry:
        yield registry


@pytest.fixture
def proxy_for():
    """``proxy_for(registry)``: a running FaultProxy in front of ``registry``."""
    with_stack = []

    def start(registry) -> FaultProxy:
        proxy = FaultProxy(registry.host)
        context = proxy.running()
        context.__enter__()
        with_stack.append(context)
        return proxy

    yield start
    for context in reversed(with_stack):
        context.__exit__(None, None, None)
