"""The shipped unit and sysusers files, checked by systemd's own tools on the host."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.services import unavailable

SYSTEMD_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNIT = SYSTEMD_DIR / "scratchd.service"
SYSUSERS = SYSTEMD_DIR / "scratchd.sysusers"


def directives(path: Path) -> dict[str, list[str]]:
    """``Key -> [values]`` of a unit file (keys may repeat, so not configparser)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def runnable_unit(tmp_path) -> Path:
    """A copy of the unit whose ExecStart names a file that exists here.

    ``systemd-analyze verify`` refuses a unit whose ExecStart binary is
    missing, and the test machine has no /usr/local/bin/scratchd (the test
    environment is a venv). Only that path is swapped; every other line is
    verified as shipped.
    """
    if shutil.which("systemd-analyze") is None:
        unavailable("systemd-analyze is not installed (apt-get install systemd)")
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/scratchd " in text
    copy = tmp_path / "scratchd.service"
    copy.write_text(text.replace("ExecStart=/usr/local/bin/scratchd ", "ExecStart=/bin/true "))
    return copy


def test_systemd_analyze_verify_passes_without_warnings(runnable_unit):
    result = subprocess.run(
        ["systemd-analyze", "verify", str(runnable_unit)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


def test_offline_security_exposure_is_low(runnable_unit):
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(runnable_unit)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for scratchd\.service: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 4.0


def test_unit_has_the_service_contract():
    unit = directives(UNIT)
    expected = {
        "Type": "notify",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "Restart": "on-failure",
        "User": "scratchd",
        "Group": "scratchd",
        "SupplementaryGroups": "docker",
        "StateDirectory": "scratchd",
        "ConfigurationDirectory": "scratchd",
        "KillMode": "mixed",
    }
    assert {k: unit[k][-1] for k in expected} == expected
    assert unit["ExecStart"][0].split()[0] == "/usr/local/bin/scratchd"
    assert " run " in unit["ExecStart"][0]
    assert "WatchdogSec" in unit
    for flag in ("NoNewPrivileges", "PrivateTmp", "ProtectKernelTunables", "RestrictSUIDSGID"):
        assert unit[flag] == ["yes"]
    assert unit["ProtectSystem"] == ["strict"] and unit["ProtectHome"] == ["read-only"]


def test_calls_allowed_back_for_builds_can_only_lower_priority():
    """The filter's allow-back for niced, SCHED_IDLE host steps is safe only with these.

    No capability to raise or to renice with, no raising the nice limit, no
    realtime policy: see the comment above the line in the unit. Whether a
    step really runs lower, and cannot climb back, is tested under systemd
    (test_service_in_systemd.py).
    """
    unit = directives(UNIT)
    assert unit["SystemCallFilter"][-1].split() == ["capset", "setpriority", "sched_setscheduler"]
    assert unit["SystemCallFilter"][:2] == ["@system-service", "~@privileged @resources"]
    assert unit["CapabilityBoundingSet"] == [""] and unit["AmbientCapabilities"] == [""]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["RestrictRealtime"] == ["yes"]
    assert unit["LimitNICE"] == ["0"]


def test_sysusers_creates_the_user_and_groups(tmp_path):
    if shutil.which("systemd-sysusers") is None:
        unavailable("systemd-sysusers is not installed (apt-get install systemd)")
    (tmp_path / "etc").mkdir()
    subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)],
        check=True,
        capture_output=True,
    )
    passwd = {
        ln.split(":")[0]: ln.split(":") for ln in (tmp_path / "etc/passwd").read_text().splitlines()
    }
    groups = {ln.split(":")[0] for ln in (tmp_path / "etc/group").read_text().splitlines()}
    assert passwd["scratchd"][5] == "/var/lib/scratchd"
    assert int(passwd["scratchd"][2]) < 1000  # a system user
    assert {"scratchd", "docker"} <= groups
