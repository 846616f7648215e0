"""state_location: the loader's answer for the two keys a reader needs, or the loader's error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scratchd.config import ConfigError, load_config, state_location

EXAMPLE = Path(__file__).parents[2] / "config" / "scratchd.toml"
REPO = '[[repo]]\nname = "app"\npath = "/srv/app"\n'
ENGINE = '[[engine]]\nname = "local"\nurl = "unix:///run/docker.sock"\n'


def write(tmp_path: Path, text: str, name: str = "scratchd.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text",
    [
        "",
        REPO,
        '[daemon]\nstate_dir = "/srv/state"\n' + REPO,
        '[daemon]\nstate_dir = "state"\n' + REPO,  # relative: next to the file
        '[daemon]\nstate_dir = "./a/../state/"\n',
        '[daemon]\nstate_dir = "~/state"\n',
        "daemon.state_dir = '/srv/dotted'\n" + ENGINE,
        'daemon = { state_dir = "/srv/inline" }\n',
        REPO + ENGINE,
        # what can follow the first [[repo]] and still matter to a reader
        REPO + '[daemon]\nstate_dir = "/srv/after"\n',
        REPO + '[ "daemon" ]\nstate_dir = "/srv/quoted"\n' + REPO.replace("app", "api"),
        REPO + ENGINE.replace("[[engine]]", "[[ 'engine' ]]"),
        '[["repo"]]\nname = "app"\npath = "/srv/app"\n' + ENGINE,
        # a [[repo]] line inside a multi-line string is not the first table
        '[daemon]\nbuilder_id = """\n[[repo]]\n"""\nstate_dir = "/srv/string"\n' + REPO,
        "[daemon]\nbuilder_id = '''\n[[repo]]\n'''\n" + ENGINE + REPO,
    ],
)
def test_agrees_with_the_loader(tmp_path, text):
    path = write(tmp_path, text)
    config = load_config(path)
    state_dir, engines = state_location(path)
    assert Path(state_dir).resolve() == config.daemon.state_dir.resolve()
    assert engines == bool(config.engines)


def test_the_documented_example(tmp_path):
    config = load_config(EXAMPLE)
    assert state_location(EXAMPLE) == (str(config.daemon.state_dir), bool(config.engines))


def test_a_relative_config_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, '[daemon]\nstate_dir = "state"\n')
    assert os.path.abspath(state_location("scratchd.toml")[0]) == str(tmp_path / "state")


@pytest.mark.parametrize(
    "text",
    [
        '[daemon]\nstate_dir = ""\n',
        "[daemon]\nstate_dir = 3\n",
        'daemon = "x"\n',
        'engine = "x"\n',
        "[daemon\n",
        '[daemon]\nstate_dir = "a"\nstate_dir = "b"\n',
    ],
)
def test_a_bad_value_of_its_keys_gets_the_loaders_error(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as loaded:
        load_config(path)
    with pytest.raises(ConfigError) as peeked:
        state_location(path)
    assert str(peeked.value) == str(loaded.value)


def test_a_missing_file_gets_the_loaders_error(tmp_path):
    with pytest.raises(ConfigError) as loaded:
        load_config(tmp_path / "none.toml")
    with pytest.raises(ConfigError) as peeked:
        state_location(tmp_path / "none.toml")
    assert str(peeked.value) == str(loaded.value)


def test_a_mistake_elsewhere_is_check_configs_to_report(tmp_path):
    """Listing builds needs the state directory, not a sound ``[[repo]]`` table."""
    path = write(tmp_path, '[daemon]\nstate_dir = "/srv/state"\n[[repo]]\nname = "app"\npaht = 1\n')
    with pytest.raises(ConfigError, match=r"repo\[1\]\.path"):
        load_config(path)
    assert state_location(path) == ("/srv/state", False)


def test_repository_tables_are_not_parsed(tmp_path):
    """With 1,000 repositories, parsing them was half of ``scratchd builds``: a TOML
    error in a repository table does not reach the listing (check-config finds it)."""
    repos = "".join(f'[[repo]]\nname = "r{i}"\npath = "/srv/r{i}"\n' for i in range(1000))
    path = write(tmp_path, '[daemon]\nstate_dir = "/srv/state"\n' + repos + "[[repo]]\nname =\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(path)
    assert state_location(path) == ("/srv/state", False)


def test_a_daemon_table_after_broken_repositories_gets_the_loaders_error(tmp_path):
    """Where ``[daemon]`` may come later, the whole file is read, and must parse."""
    path = write(tmp_path, REPO + "[[repo]]\nname =\n[daemon]\nstate_dir = '/srv/late'\n")
    with pytest.raises(ConfigError) as loaded:
        load_config(path)
    with pytest.raises(ConfigError) as peeked:
        state_location(path)
    assert str(peeked.value) == str(loaded.value)
