"""Fixtures of the system tests: wheels, the systemd image, a booted container."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.services import unavailable
from tests.systemd import rootfs
from tests.systemd.container import booted

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory) -> Path:
    """scratchd and its dependencies as wheels, built on the host.

    The container installs from here with ``--no-index``: it never needs a
    package index, only what this machine's pip already has or fetched.
    """
    out = tmp_path_factory.mktemp("wheels")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", str(ROOT), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        unavailable(f"pip wheel failed: {result.stderr.strip()[-2000:]}")
    return out


@pytest.fixture(scope="session")
def systemd_image(docker_client) -> str:
    try:
        return rootfs.docker_image(docker_client)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        unavailable(f"cannot make the Debian 12 systemd image: {exc}")
        raise


@pytest.fixture(scope="session")
def systemd_box(docker_client, systemd_image, wheelhouse):
    """A booted Debian 12 with scratchd installed as the README says.

    One per session: booting and installing costs half a minute on a small
    machine, and the system tests use distinct unit names.

    Installed into a venv (Debian's Python refuses system-wide pip) and
    linked to /usr/local/bin/scratchd, the path the unit's ExecStart names;
    the unit and sysusers files are the shipped ones.
    """
    mounts = {str(wheelhouse): "/srv/wheels", str(ROOT / "systemd"): "/srv/systemd"}
    with booted(docker_client, systemd_image, mounts) as box:
        box.sh(
            "python3 -m venv /opt/scratchd"
            " && /opt/scratchd/bin/pip install --quiet --no-index --find-links /srv/wheels scratchd"
            " && ln -s /opt/scratchd/bin/scratchd /usr/local/bin/scratchd"
            " && install -m 0644 /srv/systemd/scratchd.service /etc/systemd/system/"
            " && install -m 0644 /srv/systemd/scratchd.sysusers /usr/lib/sysusers.d/scratchd.conf"
            " && systemd-sysusers && systemctl daemon-reload"
        )
        yield box
