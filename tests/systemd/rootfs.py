"""A Debian 12 root with systemd, made with debootstrap and cached.

debootstrap takes minutes and downloads ~100 MB, so its result is kept as a
tarball under ``/var/cache/scratchd-test/`` keyed by a hash of everything
that shapes it (suite, variant, package list). A second run only imports the
tarball into Docker, and a third finds the image already there.

The mirror is the one this machine's apt already uses (read from
``/etc/apt/sources.list*``), so the test reaches whatever apt reaches.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_DIR = Path("/var/cache/scratchd-test")
SUITE = "bookworm"
VARIANT = "minbase"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What the system test needs inside: systemd as PID 1 (systemd-sysv gives
# /sbin/init), dbus for systemctl, a Python to install the wheels into, git
# for the watched repository, ca-certificates so pip/requests start cleanly,
# and procps for /bin/kill, which the unit's ExecReload runs (every Debian
# install but minbase has it).
PACKAGES = (
    "ca-certificates",
    "dbus",
    "git",
    "procps",
    "python3",
    "python3-venv",
    "systemd",
    "systemd-sysv",
)
IMAGE_REPOSITORY = "scratchd-test/systemd-bookworm"


def cache_key() -> str:
    """A short hash of what the root is made of; a new package list is a new root."""
    text = "\n".join((SUITE, VARIANT, *sorted(PACKAGES)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def apt_mirror(sources_dir: Path = Path("/etc/apt")) -> str:
    """The Debian archive URI apt on this machine uses (not the security one)."""
    files = [sources_dir / "sources.list"]
    files += sorted((sources_dir / "sources.list.d").glob("*"))
    for path in files:
        with contextlib.suppress(OSError):
            for uri in _uris(path.read_text()):
                if re.search(r"/debian/?$", uri):
                    return uri.rstrip("/")
    return DEFAULT_MIRROR


def _uris(text: str) -> list[str]:
    """URIs from both one-line (``deb URI suite``) and deb822 (``URIs:``) files."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("deb "):
            parts = [p for p in line.split() if not p.startswith("[")]
            if len(parts) > 1:
                found.append(parts[1])
        elif line.lower().startswith("uris:"):
            found.extend(line.split(":", 1)[1].split())
    return found


def rootfs_tarball(cache_dir: Path = CACHE_DIR) -> Path:
    """Path of the cached root tarball, running debootstrap once if missing.

    A lock file keeps two concurrent test runs from bootstrapping twice; the
    tarball is written under a temporary name and renamed, so a run killed
    half-way never leaves a truncated cache entry behind.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / f"debootstrap-{SUITE}-{cache_key()}.tar"
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not tarball.exists():
            _bootstrap(tarball)
    return tarball


def _bootstrap(tarball: Path) -> None:
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed (apt-get install debootstrap)")
    with tempfile.TemporaryDirectory(dir=tarball.parent, prefix="root-") as tmp:
        root = Path(tmp) / "root"
        subprocess.run(
            [
                "debootstrap",
                f"--variant={VARIANT}",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(root),
                apt_mirror(),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=1800,
        )
        _trim(root)
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(root), "-cf", str(partial), "."], check=True)
        os.replace(partial, tarball)


def _trim(root: Path) -> None:
    """Drop what only wastes space in the image (apt lists, package cache)."""
    for sub in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (root / sub).glob("*.deb"):
            entry.unlink()
    shutil.rmtree(root / "var/lib/apt/lists", ignore_errors=True)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)


def docker_image(client) -> str:
    """Name of a Docker image made from the cached root (imported once)."""
    name = f"{IMAGE_REPOSITORY}:{cache_key()}"
    with contextlib.suppress(Exception):
        client.images.get(name)
        return name
    tarball = rootfs_tarball()
    repo, tag = name.rsplit(":", 1)
    client.api.import_image(
        src=str(tarball), repository=repo, tag=tag, changes=['CMD ["/sbin/init"]']
    )
    return name
