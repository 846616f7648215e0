"""``scratchd lint [FILE]`` as a user runs it: a real process, its output and exit code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLEAN = "box: golang\nbuild:\n  steps:\n    - script:\n        code: go build\n"
WARN_ONLY = "box: golang\nbuild:\n  steps:\n    - internal/watch\n"
BROKEN = (
    "box: golang\nbuild:\n  steps:\n    - internal/docker-push:\n"
    "        respository: quay.io/o/a\n        tagz: x\n    - internal/shell\n"
)


def scratchd_lint(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchd", "lint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_default_file_is_wercker_yml_in_the_current_directory(tmp_path):
    (tmp_path / "wercker.yml").write_text(CLEAN)
    out = scratchd_lint(cwd=tmp_path)
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")


def test_errors_and_warnings_are_printed_with_file_line_col(tmp_path):
    (tmp_path / "ci.yml").write_text(BROKEN)
    out = scratchd_lint("ci.yml", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.splitlines() == [
        "ci.yml:4:7: internal/docker-push needs the option 'repository'",
        "ci.yml:5:9: warning: unknown option 'respository' of internal/docker-push is ignored, "
        "as wercker ignored it; did you mean 'repository'?",
        "ci.yml:6:9: warning: unknown option 'tagz' of internal/docker-push is ignored, "
        "as wercker ignored it; did you mean 'tag'?",
        "ci.yml:7:7: warning: step 'internal/shell' will not run here: "
        "it opens an interactive shell for 'wercker dev'",
    ]


def test_warnings_alone_pass_unless_strict(tmp_path):
    (tmp_path / "wercker.yml").write_text(WARN_ONLY)
    assert scratchd_lint(cwd=tmp_path).returncode == 0
    strict = scratchd_lint("--strict", cwd=tmp_path)
    assert strict.returncode == 1
    assert "warning: step 'internal/watch' will not run here" in strict.stdout


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "wercker.yml:1:1: the file is empty"),
        (b"box: \x80\x81", "wercker.yml:1:6: not UTF-8 text (byte 0x80)"),
        (b"\x7fELF\x02\x01\x01\x00", "wercker.yml:1:1: character not allowed in YAML"),
        (b"box: [golang\n", "wercker.yml:2:1: invalid YAML"),
        (b"build:\n\t- x\n", "wercker.yml:2:1: tab used for indentation"),
        (b"- just\n- a list\n", "wercker.yml:1:1: the top level must be a map"),
        (b"box: 5\nbuild: {steps: {a: 1}}\n", "wercker.yml:2:16: steps must be a list"),
    ],
)
def test_bad_input_gives_one_clean_error_never_a_traceback(tmp_path, content, expected):
    (tmp_path / "wercker.yml").write_bytes(content)
    out = scratchd_lint(cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.startswith(expected)
    assert "Traceback" not in out.stderr and out.stderr == ""


def test_missing_file_and_directory(tmp_path):
    missing = scratchd_lint("nope.yml", cwd=tmp_path)
    assert (missing.returncode, missing.stdout.strip()) == (
        1,
        "nope.yml: cannot read: No such file or directory",
    )
    directory = scratchd_lint(".", cwd=tmp_path)
    assert directory.returncode == 1
    assert directory.stdout.startswith(".: cannot read: ")
    assert "Traceback" not in missing.stderr + directory.stderr


def test_vendored_steps_next_to_the_file_are_found(tmp_path):
    (tmp_path / "wercker.yml").write_text("build:\n  steps:\n    - wercker/golint@1.0.0\n")
    assert ".scratchd/steps/golint/" in scratchd_lint(cwd=tmp_path).stdout
    (tmp_path / ".scratchd/steps/golint").mkdir(parents=True)
    (tmp_path / ".scratchd/steps/golint/run.sh").write_text("golint ./...\n")
    assert scratchd_lint(cwd=tmp_path).stdout == ""
