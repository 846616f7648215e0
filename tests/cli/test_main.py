"""The command dispatcher: one-line errors, lean start-up, every command listed."""

from __future__ import annotations

import subprocess
import sys

from scratchd.cli import COMMANDS, build_parser, requested_command


def test_requested_command_skips_global_options_and_maps_dashes():
    assert requested_command(["-v", "-v", "check-config", "--config", "x"]) == "check_config"
    assert requested_command(["bake", "dir"]) == "bake"
    assert requested_command(["--help"]) is None
    assert requested_command(["no-such-command"]) is None


def test_full_parser_lists_every_command():
    help_text = build_parser().format_help()
    for name in COMMANDS:
        assert name.replace("_", "-") in help_text


def test_a_command_imports_only_its_own_module(tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "f").write_text("x")
    code = (
        "import sys\n"
        "from scratchd.cli import main\n"
        f"rc = main(['bake', {str(tmp_path / 'dir')!r}, '--oci-layout', "
        f"{str(tmp_path / 'out')!r}])\n"
        "print(sorted(m for m in sys.modules if m.startswith('scratchd.cli.')))\n"
        "sys.exit(rc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = eval(out.strip().splitlines()[-1])  # noqa: S307 - our own printed list
    assert "scratchd.cli.bake" in loaded
    assert not {"scratchd.cli.run", "scratchd.cli.demo", "scratchd.cli.build"} & set(loaded)


def test_unknown_command_is_a_usage_error_listing_commands():
    proc = subprocess.run(
        [sys.executable, "-m", "scratchd", "frobnicate"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "invalid choice: 'frobnicate'" in proc.stderr
    assert "check-config" in proc.stderr
