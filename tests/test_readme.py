"""The README's two commands work as written, as root without sudo and as a sudo user.

A minimal Debian 12 has no ``sudo``: a quick start that begins with ``sudo``
fails there with "sudo: command not found". The commands run here in bash with
a PATH of recording shims in place of apt-get, python3, pip and sudo, so the
test checks the shell line itself (what runs, in which order, through sudo or
not), not the packages it installs (CI installs those for real).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"

SHIM = """#!/bin/sh
echo "$(basename "$0") $*" >> "$RECORD"
"""
# python3 -m venv .venv makes the venv's pip and scratchd, which record too.
PYTHON_SHIM = """#!/bin/sh
echo "python3 $*" >> "$RECORD"
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
    mkdir -p "$3/bin"
    for tool in pip scratchd; do
        printf '#!/bin/sh\\necho "venv-%s $*" >> "$RECORD"\\n' "$tool" > "$3/bin/$tool"
        chmod +x "$3/bin/$tool"
    done
fi
"""
SUDO_SHIM = """#!/bin/sh
echo "sudo $*" >> "$RECORD"
exec "$@"
"""


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README.read_text(), flags=re.S)


def quick_start() -> str:
    return sh_blocks()[0].strip()


def ci_command() -> str:
    return sh_blocks()[1].strip()


def run(line: str, tmp_path: Path, *, with_sudo: bool) -> list[str]:
    shims = tmp_path / "shims"
    shims.mkdir()
    for name, text in (("apt-get", SHIM), ("bash", None), ("python3", PYTHON_SHIM)):
        if text is None:  # the real bash runs the line; a shim records `bash .ci/run`
            text = SHIM
        (shims / name).write_text(text)
        (shims / name).chmod(0o755)
    if with_sudo:
        (shims / "sudo").write_text(SUDO_SHIM)
        (shims / "sudo").chmod(0o755)
    for tool in ("mkdir", "chmod", "basename", "printf", "dirname"):
        found = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True)
        if found.stdout.strip().startswith("/"):
            (shims / tool).symlink_to(found.stdout.strip())
    record = tmp_path / "record"
    record.touch()
    work = tmp_path / "checkout"
    work.mkdir()
    env = {"PATH": str(shims), "RECORD": str(record), "HOME": str(tmp_path)}
    done = subprocess.run(
        ["/bin/bash", "-c", line], cwd=work, env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "command not found" not in done.stderr
    return record.read_text().splitlines()


@pytest.mark.parametrize("with_sudo", [False, True], ids=["root-without-sudo", "sudo-user"])
def test_quick_start_runs_as_written(tmp_path, with_sudo):
    calls = run(quick_start(), tmp_path, with_sudo=with_sudo)
    prefix = "sudo " if with_sudo else ""
    apt = [c for c in calls if c.startswith(f"{prefix}apt-get")]
    assert apt[0] == f"{prefix}apt-get update"
    assert apt[1].startswith(f"{prefix}apt-get install -y python3-venv")
    rest = [c for c in calls if not c.startswith(("sudo", "apt-get"))]
    assert rest == ["python3 -m venv .venv", "venv-pip install .", "venv-scratchd demo"]


@pytest.mark.parametrize("with_sudo", [False, True], ids=["root-without-sudo", "sudo-user"])
def test_test_command_runs_as_written(tmp_path, with_sudo):
    calls = run(ci_command(), tmp_path, with_sudo=with_sudo)
    assert calls[-1] == "bash .ci/run"
    assert (calls[0] == "sudo bash .ci/run") is with_sudo


def test_no_command_in_the_readme_starts_with_a_bare_sudo():
    for block in sh_blocks()[:2]:
        assert not re.search(r"(^|&&\s*|;\s*)sudo\s", block), block
