"""``scratchd build`` on the host executor: output, summary, exit codes, JSON, masking."""

from __future__ import annotations

import json

import pytest

from scratchd.cli import main
from tests.git.repos import WorkRepo

SECRET = "cli-secret-value-9000"

FAILING = """\
build:
  steps:
    - script:
        name: greet
        code: echo "hello $WHO from $WERCKER_GIT_BRANCH, token $API_TOKEN"
    - script:
        name: compile
        code: |
          echo compiling
          echo "$API_TOKEN" >&2
          exit 4
  after-steps:
    - script:
        name: notify
        code: echo "notify $WERCKER_RESULT $WERCKER_FAILED_STEP_DISPLAY_NAME"
"""

PASSING = """\
build:
  steps:
    - script:
        name: make
        code: echo "version $(cat VERSION)" && cp VERSION "$WERCKER_OUTPUT_DIR/"
deploy:
  steps:
    - script:
        name: ship
        code: echo "shipping $(cat VERSION)"
staging:
  steps:
    - script:
        name: stage
        code: echo staged
"""


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """The default per-repository cache dir goes under XDG_CACHE_HOME: keep it in tmp."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def secrets_file(tmp_path):
    path = tmp_path / "secrets.env"
    path.write_text(f"# build secrets\nAPI_TOKEN={SECRET}\n")
    return path


def build(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["build", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_failed_build_exit_1_summary_names_step_and_masks_secret(tmp_path, capsys, secrets_file):
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("failing", {"wercker.yml": FAILING})
    code, out, err = build(
        capsys,
        str(repo.path),
        "--executor=host",
        f"--secrets-file={secrets_file}",
        "--env",
        "WHO=ada",
        f"--cache-dir={tmp_path / 'cache'}",
    )
    assert code == 1
    assert "--- greet" in out and "--- compile" in out and "--- after-step notify" in out
    assert "    hello ada from main, token ***" in out
    assert "  ! ***" in out  # stderr lines are marked, and masked
    assert "notify failed compile" in out
    assert "build failed: step build/compile (exit status 4)" in out
    assert SECRET not in out + err
    summary = out[out.index("summary") :]
    assert "passed" in summary and "failed" in summary and "build/notify (after)" in summary


def test_json_result_and_pipeline_selection(tmp_path, capsys):
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("v1", {"wercker.yml": PASSING, "VERSION": "1\n"})
    code, out, _ = build(
        capsys, str(repo.path), "--executor", "host", "--json", f"--cache-dir={tmp_path / 'c'}"
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["status"] == "passed" and doc["commit"] == repo.head()
    assert [(s["pipeline"], s["name"]) for s in doc["steps"]] == [
        ("build", "make"),
        ("deploy", "ship"),
    ]
    assert all(s["duration"] >= 0 for s in doc["steps"])
    assert "shipping 1" in doc["output"]

    code, out, _ = build(
        capsys, str(repo.path), "--executor=host", "--pipeline", "staging", "--json"
    )
    assert code == 0 and [s["name"] for s in json.loads(out)["steps"]] == ["stage"]
    assert list((tmp_path / "xdg-cache" / "scratchd" / "build-cache").iterdir())


def test_commit_option_builds_an_older_commit(tmp_path, capsys):
    repo = WorkRepo(tmp_path / "repo")
    first = repo.commit("v1", {"wercker.yml": PASSING, "VERSION": "1\n"})
    repo.commit("v2", {"VERSION": "2\n"})
    code, out, _ = build(capsys, str(repo.path), "--executor=host", "--commit", first[:10])
    assert code == 0
    assert "    version 1" in out and "version 2" not in out
    assert "build passed" in out


def test_missing_wercker_yml_is_a_one_line_error(tmp_path, capsys):
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("no yml", {"README": "hi\n"})
    code, _, err = build(capsys, str(repo.path), "--executor=host")
    assert code == 1
    assert err.strip().startswith("scratchd: error:") and "has no wercker.yml" in err
    assert "Traceback" not in err


def test_bad_wercker_yml_names_line_and_column(tmp_path, capsys):
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("bad", {"wercker.yml": "build:\n  steps: nope\n"})
    code, _, err = build(capsys, str(repo.path), "--executor=host")
    assert code == 1
    assert f"{repo.path}/wercker.yml:2:" in err and "Traceback" not in err  # not the tmp copy


def test_not_a_repository_and_unknown_revision(tmp_path, capsys):
    code, _, err = build(capsys, str(tmp_path), "--executor=host")
    assert code == 1 and "not a git repository" in err
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("v1", {"wercker.yml": PASSING, "VERSION": "1\n"})
    code, _, err = build(capsys, str(repo.path), "--executor=host", "--commit", "nope")
    assert code == 1 and "unknown revision 'nope'" in err


def test_bad_env_is_a_usage_error(tmp_path, capsys):
    repo = WorkRepo(tmp_path / "repo")
    repo.commit("v1", {"wercker.yml": PASSING, "VERSION": "1\n"})
    code, _, err = build(capsys, str(repo.path), "--executor=host", "--env", "NOEQUALS")
    assert code == 2 and "--env 'NOEQUALS' is not K=V" in err
