"""check_config against real repositories and files in tmp."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchd.config import check_config, load_config
from tests.git.repos import WorkRepo, bare_repo, git


@pytest.fixture
def repos(tmp_path):
    work = WorkRepo(tmp_path / "work")
    work.commit(files={"wercker.yml": "build:\n  steps:\n    - script:\n        code: true\n"})
    bare = bare_repo(tmp_path / "srv.git")
    work.push(str(bare), "main")
    return work.path, bare


def load(tmp_path: Path, body: str):
    (tmp_path / "state").mkdir(exist_ok=True)
    path = tmp_path / "scratchd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n' + body)
    return load_config(path)


def repo_block(name: str, path: Path, extra: str = "") -> str:
    return f'[[repo]]\nname = "{name}"\npath = "{path}"\n{extra}'


def errors(problems):
    return [p for p in problems if p.severity == "error"]


def test_good_config_has_no_errors(tmp_path, repos):
    work, bare = repos
    config = load(tmp_path, repo_block("w", work) + repo_block("b", bare))
    assert check_config(config, environ={}) == []


def test_missing_path_and_not_a_repository(tmp_path, repos):
    plain = tmp_path / "plain"
    plain.mkdir()
    config = load(
        tmp_path,
        repo_block("ok", repos[0]) + repo_block("gone", tmp_path / "gone") + repo_block("p", plain),
    )
    found = errors(check_config(config, environ={}))
    assert [(p.key, p.line) for p in found] == [("repo[2].path", 8), ("repo[3].path", 11)]
    assert "does not exist" in found[0].message
    assert "not a readable git repository" in found[1].message
    assert str(found[0]).startswith(f"{config.path}:8: repo[2].path: error: ")


def test_secrets_file_must_not_be_world_readable(tmp_path, repos):
    secrets = tmp_path / "cities.env"
    secrets.write_text("TOKEN=x\n")
    secrets.chmod(0o644)
    config = load(tmp_path, repo_block("w", repos[0], f'secrets_file = "{secrets}"\n'))
    (problem,) = errors(check_config(config, environ={}))
    assert problem.key == "repo[1].secrets_file" and problem.line == 6
    assert "world-readable" in problem.message and "644" in problem.message
    secrets.chmod(0o640)
    assert errors(check_config(config, environ={})) == []


def test_registry_sources(tmp_path, repos):
    token = tmp_path / "token"
    token.write_text("t")
    token.chmod(0o604)
    body = (
        f'[registry."a.io"]\nusername = "u"\npassword_file = "{token}"\n'
        '[registry."b.io"]\nusername = "u"\npassword_env = "B_TOKEN"\n'
        '[registry."c.io"]\nusername = "u"\npassword_credential = "c"\n'
        f'[registry."d.io"]\nusername = "u"\npassword_file = "{tmp_path / "missing"}"\n'
    )
    config = load(tmp_path, body)
    problems = check_config(config, environ={})
    by_key = {p.key: p for p in problems}
    assert by_key['registry."a.io".password_file'].severity == "error"
    assert by_key['registry."b.io".password_env'].severity == "warning"
    assert by_key['registry."c.io".password_credential'].severity == "warning"
    assert "No such file" in by_key['registry."d.io".password_file'].message
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "c").write_text("c-token")
    quiet = check_config(config, environ={"B_TOKEN": "xyz", "CREDENTIALS_DIRECTORY": str(creds)})
    assert {p.key for p in quiet} == {
        'registry."a.io".password_file',
        'registry."d.io".password_file',
    }


def test_warnings_for_unmatched_branches_and_missing_pipeline_file(tmp_path, repos):
    work, _ = repos
    git(work, "checkout", "-q", "-b", "release/1")
    git(work, "rm", "-q", "wercker.yml")
    git(work, "commit", "-q", "-m", "drop pipeline")
    config = load(
        tmp_path,
        repo_block("w", work, 'branches = ["release/*"]\n')
        + repo_block("x", work, 'branches = ["nothing-*"]\n'),
    )
    problems = check_config(config, environ={})
    assert not errors(problems)
    messages = {p.key: p.message for p in problems}
    assert (
        "wercker.yml is missing at the tip of refs/heads/release/1"
        in messages["repo[1].pipeline_file"]
    )
    assert "no branch" in messages["repo[2].branches"]


def test_state_dir_problems(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    path = tmp_path / "scratchd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{blocker}"\n')
    (problem,) = check_config(load_config(path), environ={})
    assert problem.severity == "error" and "not a directory" in problem.message
    assert problem.line == 2
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path / "new" / "state"}"\n')
    (problem,) = check_config(load_config(path), environ={})
    assert problem.severity == "warning" and "will create it" in problem.message


def test_missing_credential_in_credentials_directory(tmp_path):
    config = load(tmp_path, '[registry."c.io"]\nusername = "u"\npassword_credential = "c"\n')
    (problem,) = check_config(config, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert problem.severity == "error" and "credential 'c' is not readable" in problem.message


def test_short_passwords_and_secrets_are_errors(tmp_path, repos):
    token = tmp_path / "token"
    token.write_text("pw\n")
    token.chmod(0o600)
    secrets = tmp_path / "team.env"
    secrets.write_text("PIN=12\n")
    secrets.chmod(0o600)
    work, _ = repos
    body = (
        f'[registry."a.io"]\nusername = "u"\npassword_file = "{token}"\n'
        '[registry."b.io"]\nusername = "u"\npassword_env = "B_TOKEN"\n'
        + repo_block("app", work, f'secrets_file = "{secrets}"\n')
    )
    config = load(tmp_path, body)
    by_key = {p.key: p for p in errors(check_config(config, environ={"B_TOKEN": "b"}))}
    assert "shorter than 3 characters" in by_key['registry."a.io".password_file'].message
    assert "shorter than 3 characters" in by_key['registry."b.io".password_env'].message
    from scratchd.cli.check_config import secrets_syntax

    (problem,) = secrets_syntax(config, [])
    assert problem.key == "repo[1].secrets_file" and "PIN: shorter than 3" in problem.message
