"""systemd/scratchd-web.service, judged by systemd's own tools."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.services import unavailable
from tests.systemd.test_unit_files import directives

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "scratchd-web.service"


@pytest.fixture
def runnable_unit(tmp_path) -> Path:
    """The unit with ExecStart swapped for a binary that exists here (verify needs one)."""
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed (apt-get install systemd)")
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/scratchd web " in text
    copy = tmp_path / "scratchd-web.service"
    copy.write_text(text.replace("ExecStart=/usr/local/bin/scratchd ", "ExecStart=/bin/true "))
    return copy


def test_verify_passes(runnable_unit):
    result = subprocess.run(
        ["systemd-analyze", "verify", str(runnable_unit)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_security_exposure_at_most_2(runnable_unit):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(runnable_unit)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for scratchd-web\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0


def test_no_docker_and_a_read_only_state_directory():
    unit = directives(UNIT)
    assert (
        unit["SupplementaryGroups"] == [""]
        and "docker" not in UNIT.read_text().split("[Service]")[1].split("#")[0]
    )
    assert unit["ReadOnlyPaths"] == ["/var/lib/scratchd"] and "StateDirectory" not in unit
    assert unit["ProtectSystem"] == ["strict"] and unit["User"] == ["scratchd"]
    assert "--bind 127.0.0.1:8470" in unit["ExecStart"][0]
