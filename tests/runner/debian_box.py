"""A Debian 12 box with the tools wercker's registry steps need, made offline-able.

Built like the systemd test's root (:mod:`tests.systemd.rootfs`): debootstrap
from the mirror this machine's apt uses, the result cached as a tarball
under ``/var/cache/scratchd-test/`` keyed by its package list, then
``docker import``-ed once. It holds Debian's npm, bundler, pip, Go and
kubectl, so the built-in steps run inside a box as they would in a real
user's box, with no registry reachable.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.systemd.rootfs import CACHE_DIR, SUITE, _trim, apt_mirror

PACKAGES = (
    "bash",
    "ca-certificates",
    "git",
    "golang-go",
    "kubernetes-client",
    "npm",
    "openssh-client",
    "python3-pip",
    "ruby-bundler",
)
IMAGE_REPOSITORY = "scratchd-test/steps-bookworm"


def cache_key() -> str:
    text = "\n".join((SUITE, "minbase", *sorted(PACKAGES)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def tarball(cache_dir: Path = CACHE_DIR) -> Path:
    """The cached root tarball, bootstrapped once (a lock keeps runs from racing)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"steps-{SUITE}-{cache_key()}.tar"
    with open(cache_dir / ".steps-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            _bootstrap(path)
    return path


def _bootstrap(path: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="steps-root-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
             SUITE, str(root), apt_mirror()],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600,
        )  # fmt: skip
        _trim(root)
        partial = path.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        os.replace(partial, path)


def docker_image(client) -> str:
    """Name of the box image (imported from the cached tarball once)."""
    name = f"{IMAGE_REPOSITORY}:{cache_key()}"
    with contextlib.suppress(Exception):
        client.images.get(name)
        return name
    repo, tag = name.rsplit(":", 1)
    client.api.import_image(
        src=str(tarball()), repository=repo, tag=tag, changes=['CMD ["/bin/bash"]']
    )
    return name


if __name__ == "__main__":  # warm the cache: python -m tests.runner.debian_box
    print(tarball())
