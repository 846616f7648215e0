"""A Debian 12 box with the tools wercker's registry steps need, made offline-able.

Built like the systemd test's root (:mod:`tests.systemd.rootfs`): debootstrap
from the mirror this machine's apt uses (then the root's own apt for the
tools, from the same mirror), the result cached as a tarball
under ``/var/cache/scratchd-test/`` keyed by its package list, then
``docker import``-ed once. It holds Debian's npm, bundler, pip, Go and
kubectl, so the built-in steps run inside a box as they would in a real
user's box, with no registry reachable; and sshd, so the same image serves
as the ssh server the ssh steps talk to (a ``services:`` container).
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
    "openssh-server",
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
    """debootstrap a minimal root, then apt-get the tools inside it.

    debootstrap's own ``--include`` resolver misses dependencies given by
    ``Provides`` (npm's node-* packages), so the packages are installed by
    the root's apt, from the same mirror, in a chroot.
    """
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="steps-root-") as tmp:
        root = Path(tmp) / "root"
        debs = path.parent / "debs"  # downloaded packages kept: a retry downloads less
        debs.mkdir(exist_ok=True)
        _run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
              SUITE, str(root), apt_mirror()], root)  # fmt: skip
        shutil.copy("/etc/resolv.conf", root / "etc" / "resolv.conf")
        # No daemon may start inside the chroot (openssh-server's postinst would
        # start sshd on this machine's network): invoke-rc.d obeys policy-rc.d.
        policy = root / "usr" / "sbin" / "policy-rc.d"
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        subprocess.run(["mount", "-t", "proc", "proc", str(root / "proc")], check=True)
        try:
            install = (
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive "
                "apt-get install -y -qq --no-install-recommends " + " ".join(PACKAGES)
            )
            _run(["chroot", str(root), "/bin/sh", "-c", install], root)
        finally:
            subprocess.run(["umount", str(root / "proc")], check=False)
            policy.unlink()
        _trim(root)
        partial = path.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        os.replace(partial, path)


def _run(argv: list[str], root: Path) -> None:
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=3600
    )
    if done.returncode != 0:
        log = root / "debootstrap" / "debootstrap.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else done.stderr[-3000:]
        raise RuntimeError(f"{argv[0]} failed:\n{tail}")


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
