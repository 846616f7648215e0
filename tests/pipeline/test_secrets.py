"""``--secrets-file`` parsing: the dotenv subset, masked values, careful errors."""

from __future__ import annotations

import subprocess

import pytest

from scratchd.errors import ConfigError
from scratchd.models import Secret
from scratchd.pipeline.secrets import load_secrets_file, parse_secrets

GOOD = """\
# registry login
export QUAY_PASSWORD='s3cr3t with spaces'
QUAY_USERNAME=org+robot
  INDENTED = value with # hash  \n\
EMPTY=
DOUBLE="a \\"quoted\\" \\$HOME\\nnext"
SINGLE='no $expansion \\n here' # trailing comment
QUAY_USERNAME=second-wins
"""


def test_good_file(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text(GOOD)
    secrets = load_secrets_file(path)
    plain = {k: v.reveal() for k, v in secrets.items()}
    assert plain == {
        "QUAY_PASSWORD": "s3cr3t with spaces",
        "QUAY_USERNAME": "second-wins",
        "INDENTED": "value with # hash",
        "EMPTY": "",
        "DOUBLE": 'a "quoted" $HOME\nnext',
        "SINGLE": "no $expansion \\n here",
    }
    assert all(isinstance(v, Secret) for v in secrets.values())
    assert "s3cr3t" not in repr(secrets) and "s3cr3t" not in f"{secrets['QUAY_PASSWORD']}"


def test_values_match_what_a_shell_reads(tmp_path):
    """The same file sourced by sh gives the same values (the format is shell's subset)."""
    text = "export A='x y'\nB=plain\nC=\"q \\\"d\\\" \\$E\"\nD=''\n"
    path = tmp_path / "s.env"
    path.write_text(text)
    ours = {k: v.reveal() for k, v in load_secrets_file(path).items()}
    out = subprocess.run(
        ["sh", "-c", f'. "{path}"; printf "%s\\0" "$A" "$B" "$C" "$D"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split("\0")[:4] == [ours["A"], ours["B"], ours["C"], ours["D"]]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("OK=one\nnot a pair hunter2\n", 2, "expected KEY=value"),
        ("1BAD=hunter2\n", 1, "expected KEY=value"),
        ("\n\nP='hunter2\n", 3, "unterminated ' quote"),
        ('P="hunter2\n', 1, 'unterminated " quote'),
        ("P='hunter2' extra\n", 1, "unexpected text after the closing quote"),
    ],
)
def test_errors_name_file_and_line_but_never_the_value(text, line, message):
    with pytest.raises(ConfigError) as info:
        parse_secrets(text, "team.env")
    assert str(info.value).startswith(f"team.env:{line}: ")
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read secrets file"):
        load_secrets_file(tmp_path / "missing.env")
    (tmp_path / "bin.env").write_bytes(b"P=\xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_secrets_file(tmp_path / "bin.env")


def test_a_secret_too_short_to_mask_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as info:
        parse_secrets("LONG=long-enough\nPIN=42\n", "team.env")
    assert str(info.value).startswith("team.env:2: PIN: shorter than 3 characters")
    assert "42" not in str(info.value).replace("team.env:2", "")
    assert parse_secrets("EMPTY=\nOK=abc\n", "team.env")["OK"].reveal() == "abc"
