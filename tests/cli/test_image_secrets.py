"""Secrets stay out of image configs: ``scratchd lint`` warns, ``scratchd build`` refuses.

The image is written to a local OCI layout and judged with skopeo (or, in
the refused case, by searching every byte of the layout for the secret).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scratchd.cli import main
from tests.git.repos import WorkRepo
from tests.support.services import unavailable

SECRET = "image-secret-value-4711"
REG_PW = "registry-pw-value-0815"

PUSH = """\
build:
  steps:
    - script:
        name: make
        code: echo hi > "$WERCKER_OUTPUT_DIR/hello.txt"
    - internal/docker-scratch-push:
        tag: v1
        env: MODE=prod TOKEN=$API_TOKEN
        labels: org.example.team=web
{extra}"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def secrets_file(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text(f"API_TOKEN={SECRET}\nPLAIN_VALUE={SECRET}-2\n")
    return path


def lint(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scratchd", "lint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def build(tmp_path, capsys, yml: str, *args: str) -> tuple[int, str, Path]:
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("push", {"wercker.yml": yml})
    store = tmp_path / "store"
    code = main(
        [
            "build",
            str(repo.path),
            "--executor=host",
            f"--image-store={store}",
            f"--cache-dir={tmp_path / 'cache'}",
            *args,
        ]
    )
    captured = capsys.readouterr()
    return code, captured.out + captured.err, store


def all_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file())


def image_config(store: Path) -> dict:
    if shutil.which("skopeo") is None:
        unavailable("skopeo is not installed (apt-get install skopeo)")
    out = subprocess.run(
        ["skopeo", "inspect", "--config", f"oci:{store}:v1"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)["config"]


LINT_YML = """\
build:
  steps:
    - internal/docker-scratch-push:
        tag: v1
        env: MODE=prod TOKEN=$API_TOKEN
        labels: v=$PLAIN_VALUE commit=$WERCKER_GIT_COMMIT
{extra}"""


def test_lint_warns_about_secret_names_and_not_once_marked_public(tmp_path, secrets_file):
    (tmp_path / "wercker.yml").write_text(LINT_YML.format(extra=""))
    out = lint(cwd=tmp_path)
    # API_TOKEN looks like a credential; PLAIN_VALUE is only known from the secrets file
    assert out.returncode == 0, out.stdout
    assert out.stdout.splitlines() == [
        "wercker.yml:5:9: warning: option 'env' of internal/docker-scratch-push puts "
        "$API_TOKEN, a secret, in clear into the image config; remove it, or add "
        "'public-env: true' if it is meant to be public"
    ]
    out = lint(f"--secrets-file={secrets_file}", cwd=tmp_path)
    lines = out.stdout.splitlines()
    assert len(lines) == 2 and lines[1].startswith("wercker.yml:6:9: warning: option 'labels'")
    assert "$PLAIN_VALUE, a secret" in lines[1] and "'public-labels: true'" in lines[1]
    assert SECRET not in out.stdout + out.stderr
    marked = LINT_YML.format(extra="        public-env: true\n        public-labels: yes\n")
    (tmp_path / "wercker.yml").write_text(marked)
    out = lint(f"--secrets-file={secrets_file}", "--strict", cwd=tmp_path)
    assert (out.returncode, out.stdout) == (0, "")


def test_build_refuses_a_secret_in_env_and_no_image_holds_it(tmp_path, capsys, secrets_file):
    code, out, store = build(
        tmp_path, capsys, PUSH.format(extra=""), f"--secrets-file={secrets_file}"
    )
    assert code == 1
    assert "wercker.yml:6:" in out
    assert "option 'env' of internal/docker-scratch-push puts $API_TOKEN, a secret" in out
    assert "'public-env: true'" in out
    assert SECRET not in out
    assert not store.exists() or SECRET.encode() not in all_bytes(store)


def test_build_with_public_env_puts_the_value_in_the_image(tmp_path, capsys, secrets_file):
    yml = PUSH.format(extra="        public-env: true\n")
    code, out, store = build(tmp_path, capsys, yml, f"--secrets-file={secrets_file}")
    assert code == 0, out
    assert SECRET not in out  # still masked in the build's own output
    config = image_config(store)
    assert f"TOKEN={SECRET}" in config["Env"] and "MODE=prod" in config["Env"]


def test_runner_refuses_a_masked_value_that_compile_cannot_name(tmp_path, capsys):
    # REG_PW comes through --env, not a secrets file: only the masker knows it is
    # secret, because it is the step's password option.
    yml = PUSH.format(extra="        password: $REG_PW\n").replace("$API_TOKEN", "x")
    yml = yml.replace("org.example.team=web", "org.example.pw=$REG_PW")
    code, out, store = build(tmp_path, capsys, yml, "--env", f"REG_PW={REG_PW}")
    assert code == 1
    assert "option 'labels'" in out and "holds a secret value" in out
    assert "'public-labels: true'" in out
    assert REG_PW not in out
    assert not store.exists() or REG_PW.encode() not in all_bytes(store)
    yml = yml.replace("        password:", "        public-labels: true\n        password:")
    code, out, store = build(tmp_path / "again", capsys, yml, "--env", f"REG_PW={REG_PW}")
    assert code == 0, out
    assert image_config(store)["Labels"]["org.example.pw"] == REG_PW
