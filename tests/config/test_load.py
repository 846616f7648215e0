"""load_config: the documented example, defaults, and errors that name file, key and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scratchd.config import (
    Config,
    ConfigError,
    DaemonConfig,
    RegistryConfig,
    RepoConfig,
    default_config_path,
    glob_match,
    load_config,
    parse_config,
    repo_changes,
)
from scratchd.errors import CredentialError

EXAMPLE = Path(__file__).parents[2] / "config" / "scratchd.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scratchd.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}:"), "every error names the file"
    return info.value


def test_example_loads_and_documents_every_key():
    config = load_config(EXAMPLE)
    assert config.daemon == DaemonConfig()  # the example shows the defaults
    repo = config.repos[0]
    assert repo.name == "cities" and repo.branches == ("main", "release/*")
    assert repo.schedule == "0 3 * * *" and repo.tags == ("v*",)
    text = EXAMPLE.read_text()
    for cls, skip in ((DaemonConfig, ()), (RegistryConfig, ("host",)), (RepoConfig, ())):
        for name in cls.__dataclass_fields__:
            if name not in skip:
                assert re.search(rf"^#? *{name} = ", text, re.M), f"{name} is not in the example"


def test_minimal_file_gets_defaults_and_relative_paths(tmp_path):
    path = write(tmp_path, '[daemon]\nstate_dir = "state"\n[[repo]]\nname = "a"\npath = "src/a"\n')
    config = load_config(path)
    assert config.daemon.state_dir == tmp_path / "state"
    assert config.daemon.max_concurrent_builds == 2 and config.daemon.poll_interval == 60
    (repo,) = config.repos
    assert repo.path == tmp_path / "src" / "a"
    assert repo.pipelines == ("build", "deploy") and not repo.build_every_commit
    assert config.executor_for(repo) == "docker" and config.notes_for(repo) is False
    assert config.repo("a") is repo and config.repo("b") is None


def test_empty_file_is_a_valid_config(tmp_path):
    config = load_config(write(tmp_path, ""))
    assert isinstance(config, Config) and config.repos == () and not config.registries


def test_repo_overrides_daemon_settings(tmp_path):
    text = (
        '[daemon]\nexecutor = "host"\nnotes = true\n'
        '[[repo]]\nname = "a"\npath = "/a"\n'
        '[[repo]]\nname = "b"\npath = "/b"\nexecutor = "docker"\nnotes = false\n'
    )
    config = load_config(write(tmp_path, text))
    a, b = config.repos
    assert (config.executor_for(a), config.notes_for(a)) == ("host", True)
    assert (config.executor_for(b), config.notes_for(b)) == ("docker", False)


# -- errors name file, key and the exact line ---------------------------------

REPOS = '[[repo]]\nname = "a"\npath = "/a"\n\n[[repo]]\nname = "b"\npath = "/b"\n'


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ('[daemon]\nstate_dirr = "/x"\n', 2, "daemon.state_dirr", "did you mean 'state_dir'"),
        (
            "[daemon]\n\n\nmax_concurrent_builds = 0\n",
            4,
            "daemon.max_concurrent_builds",
            "at least 1",
        ),
        ('[daemon]\nmax_concurrent_builds = "2"\n', 2, "daemon.max_concurrent_builds", "integer"),
        ('[daemon]\nexecutor = "dockr"\n', 2, "daemon.executor", "did you mean 'docker'"),
        ('[daemon]\npoll_interval = "5 minutes"\n', 2, "daemon.poll_interval", "invalid duration"),
        ('[daemon]\npoll_interval = "0s"\n', 2, "daemon.poll_interval", "greater than zero"),
        ("[daemon]\nnotes = 1\n", 2, "daemon.notes", "true or false"),
        ("[daemn]\nx = 1\n", 1, "daemn", "did you mean 'daemon'"),
        (REPOS + 'branchs = ["x"]\n', 8, "repo[2].branchs", "did you mean 'branches'"),
        (REPOS + 'branches = ["ok", "bad..glob"]\n', 8, "repo[2].branches", "git ref name"),
        (REPOS + 'tags = "v*"\n', 8, "repo[2].tags", "list of strings"),
        (REPOS + 'schedule = "0 25 * * *"\n', 8, "repo[2].schedule", "invalid cron"),
        (REPOS + "pipelines = []\n", 8, "repo[2].pipelines", "must not be empty"),
        (REPOS + 'executor = "vm"\n', 8, "repo[2].executor", "docker, host"),
        (REPOS.replace('name = "b"', 'name = "a"'), 6, "repo[2].name", "first used on line 2"),
        (REPOS.replace('path = "/b"\n', ""), 5, "repo[2].path", "required"),
        (REPOS.replace('"b"', '"../b"'), 6, "repo[2].name", "invalid value"),
        (
            '[registry."quay.io"]\npassword_file = "/t"\n',
            2,
            'registry."quay.io".password_file',
            "needs a username",
        ),
        (
            '[registry."q.io"]\nusername = "u"\npassword_file = "/t"\npassword_env = "T"\n',
            4,
            'registry."q.io".password_env',
            "only one of",
        ),
        (
            '[registry."q.io"]\nusername = "u"\npassword_env = "1X"\n',
            3,
            'registry."q.io".password_env',
            "invalid",
        ),
        (
            "[daemon]\nmax_concurrent_builds = 1000000000\n",
            2,
            "daemon.max_concurrent_builds",
            "at most 256",
        ),
        (
            '[daemon]\n\nretry_max_delay = "99999999999d"\n',
            3,
            "daemon.retry_max_delay",
            'at most "7d"',
        ),
        ("[daemon]\npoll_interval = inf\n", 2, "daemon.poll_interval", 'at most "7d"'),
        ("[daemon]\nshutdown_grace = nan\n", 2, "daemon.shutdown_grace", 'at most "7d"'),
        ("[daemon]\nkeep_builds = 10000000\n", 2, "daemon.keep_builds", "at most 100000"),
        ("[daemon]\nretry_limit = 1000\n", 2, "daemon.retry_limit", "at most 100"),
        (
            '[daemon]\nregistry_max_response = "2TiB"\n',
            2,
            "daemon.registry_max_response",
            "at most 1TiB",
        ),
        (
            '[daemon]\nbake_max_file_size = "12 parsecs"\n',
            2,
            "daemon.bake_max_file_size",
            "invalid size",
        ),
        ("[daemon]\nbake_max_total_size = 0\n", 2, "daemon.bake_max_total_size", "at least 1"),
        ('[daemon]\nbake_timeout = "8d"\n', 2, "daemon.bake_timeout", 'at most "7d"'),
        (
            '[daemon]\nregistry_request_timeout = "0s"\n',
            2,
            "daemon.registry_request_timeout",
            "greater than zero",
        ),
        ('[registry."q.io"]\nuser = "u"\n', 2, 'registry."q.io".user', "did you mean 'username'"),
        ('repo = "x"\n', 1, "repo", "[[repo]] tables"),
    ],
)
def test_error_names_key_and_line(tmp_path, text, line, key, words):
    err = error_of(tmp_path, text)
    assert (err.line, err.key) == (line, key)
    assert f":{line}: {key}: " in str(err)
    assert words in str(err)


def test_sizes_and_optional_caps(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        '[daemon]\nregistry_max_response = "512KiB"\nbake_max_file_size = "2G"\n'
        'bake_max_total_size = 1048576\nbake_timeout = "90s"\n'
    )
    daemon = load_config(path).daemon
    assert daemon.registry_max_response == 512 * 1024
    assert (daemon.bake_max_file_size, daemon.bake_max_total_size) == (2 * 10**9, 1 << 20)
    assert daemon.bake_timeout == 90.0
    assert load_config(tmp_path / "s.toml").daemon.bake_timeout == 90.0
    path.write_text("")
    assert load_config(path).daemon.bake_max_file_size is None  # caps are optional


def test_multiline_values_do_not_shift_lines(tmp_path):
    text = (
        "[daemon]\n"
        'poll_interval = "1m"\n'
        "[[repo]]\n"
        'name = "a"\n'
        'path = "/a"\n'
        "branches = [\n"
        '  "main",\n'
        '  "release/*",\n'
        "]\n"
        "pipelines = ['build', 'cancel_superseded = 1']\n"
        'secrets_file = """/x"""\n'
        "cancel_superseded = 3\n"
    )
    err = error_of(tmp_path, text)
    assert (err.line, err.key) == (12, "repo[1].cancel_superseded")


def test_toml_syntax_error_has_line(tmp_path):
    err = error_of(tmp_path, '[daemon]\nstate_dir = "/x"\nkeep_builds = = 3\n')
    assert err.line == 3 and "invalid TOML" in str(err)


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml")


def test_default_config_path(monkeypatch, tmp_path):
    monkeypatch.delenv("SCRATCHD_CONFIG", raising=False)
    assert default_config_path() == Path("/etc/scratchd/scratchd.toml")
    monkeypatch.setenv("SCRATCHD_CONFIG", str(tmp_path / "x.toml"))
    assert default_config_path() == tmp_path / "x.toml"


# -- globs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("main", "main", True),
        ("main", "main2", False),
        ("release/*", "release/1.0", True),
        ("release/*", "release/1.0/hotfix", True),
        ("release/[0-9]*", "release/1.0", True),
        ("release/[0-9]*", "release/x", False),
        ("*", "feature/x", True),
        ("Main", "main", False),
        ("v?", "v1", True),
        ("v?", "v10", False),
        ("a.b", "axb", False),
    ],
)
def test_glob_match(pattern, name, matches):
    assert glob_match(pattern, name) is matches


def test_repo_watches_refs():
    repo = RepoConfig("a", Path("/a"), branches=("main", "release/*"), tags=("v*",))
    assert repo.watches_ref("refs/heads/main") and repo.watches_ref("refs/heads/release/2")
    assert repo.watches_ref("refs/tags/v1.0") and not repo.watches_ref("refs/tags/x1")
    assert not repo.watches_ref("refs/heads/dev") and not repo.watches_ref("refs/notes/x")


# -- registry passwords are read lazily and never shown --------------------------


def test_password_from_file_env_and_credential(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret-file\n")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "quay").write_text("s3cret-cred")
    by_file = RegistryConfig("q.io", "u", password_file=token)
    by_env = RegistryConfig("q.io", "u", password_env="TOKEN")
    by_cred = RegistryConfig("q.io", "u", password_credential="quay")
    assert by_file.password({}).reveal() == "s3cret-file"
    assert by_env.password({"TOKEN": "s3cret-env"}).reveal() == "s3cret-env"
    assert by_cred.password({"CREDENTIALS_DIRECTORY": str(creds)}).reveal() == "s3cret-cred"
    assert RegistryConfig("q.io").password({}) is None
    secret = by_file.password({})
    assert "s3cret" not in f"{secret} {secret!r} {by_file!r}"


def test_password_problems_are_credential_errors(tmp_path):
    with pytest.raises(CredentialError, match="TOKEN is not set"):
        RegistryConfig("q.io", "u", password_env="TOKEN").password({})
    with pytest.raises(CredentialError, match="CREDENTIALS_DIRECTORY"):
        RegistryConfig("q.io", "u", password_credential="quay").password({})
    with pytest.raises(CredentialError, match="cannot read password file"):
        RegistryConfig("q.io", "u", password_file=tmp_path / "nope").password({})


def test_registry_table_from_file(tmp_path):
    text = '[registry."127.0.0.1:5000"]\nusername = "u"\npassword_env = "T"\ninsecure = true\n'
    config = load_config(write(tmp_path, text))
    reg = config.registries["127.0.0.1:5000"]
    assert reg.insecure and reg.password_source == "environment variable T"


def test_repo_changes_for_reload(tmp_path):
    old = parse_config(
        '[[repo]]\nname = "a"\npath = "/a"\n[[repo]]\nname = "b"\npath = "/b"\n', tmp_path / "c"
    )
    new = parse_config(
        "[daemon]\nmax_concurrent_builds = 5\n"
        '[[repo]]\nname = "b"\npath = "/b"\nbranches = ["dev"]\n'
        '[[repo]]\nname = "c"\npath = "/c"\n',
        tmp_path / "c",
    )
    changes = repo_changes(old, new)
    assert [r.name for r in changes.added] == ["c"]
    assert [r.name for r in changes.removed] == ["a"]
    assert [(r.name, r.branches) for r in changes.changed] == [("b", ("dev",))]
    assert not repo_changes(new, new)


def test_same_text_gives_equal_configs(tmp_path):
    text = EXAMPLE.read_text()
    assert parse_config(text, EXAMPLE) == parse_config(text, EXAMPLE)
    assert not repo_changes(parse_config(text, EXAMPLE), parse_config(text, EXAMPLE))


def test_a_password_too_short_to_mask_is_refused(tmp_path):
    token = tmp_path / "token"
    token.write_text("ab\n")
    with pytest.raises(CredentialError, match="shorter than 3 characters"):
        RegistryConfig("q.io", "u", password_file=token).password({})
    with pytest.raises(CredentialError, match="too short to be masked"):
        RegistryConfig("q.io", "u", password_env="T").password({"T": "x"})


def test_a_valid_file_is_never_scanned_for_lines(tmp_path):
    """Line numbers are for errors: a good file (1,000 repositories) must not pay the scan."""
    repos = "".join(f'[[repo]]\nname = "r{i}"\npath = "src/r{i}"\n' for i in range(50))
    config = load_config(write(tmp_path, f'[daemon]\nstate_dir = "state"\n{repos}'))
    assert config.lines is not None and not config.lines.scanned
    assert config.line_of(("repo", 49, "path")) == 5 + 49 * 3  # asked: scanned then
    assert config.lines.scanned
