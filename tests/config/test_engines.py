"""``[[engine]]`` blocks: parsing, the TLS/loopback rule, and check-config's findings."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchd.config import ConfigError, check_config, load_config, parse_config
from scratchd.config.engines import EngineTLS


def config_text(tmp_path: Path, body: str) -> str:
    (tmp_path / "state").mkdir(exist_ok=True)
    return f'[daemon]\nstate_dir = "{tmp_path / "state"}"\n' + body


def load(tmp_path: Path, body: str):
    path = tmp_path / "scratchd.toml"
    path.write_text(config_text(tmp_path, body))
    return load_config(path)


def error(tmp_path: Path, body: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, body)
    return info.value


def tls_files(tmp_path: Path) -> str:
    for name in ("ca", "cert", "key"):
        (tmp_path / f"{name}.pem").write_text("x")
        (tmp_path / f"{name}.pem").chmod(0o600)
    return f'{{ ca = "{tmp_path}/ca.pem", cert = "{tmp_path}/cert.pem", key = "key.pem" }}'


def test_engines_parse_with_defaults_and_relative_tls_paths(tmp_path):
    body = (
        f'[[engine]]\nname = "b1"\nurl = "tcp://10.0.0.5:2376"\ntls = {tls_files(tmp_path)}\n'
        'capacity = 2\nlabels = ["amd64", "big"]\n'
        '[[engine]]\nname = "local"\nurl = "unix:///run/docker.sock"\n'
        '[[repo]]\nname = "r"\npath = "/srv/r.git"\nlabels = ["big"]\n'
    )
    config = load(tmp_path, body)
    b1, local = config.engines
    assert (b1.name, b1.capacity, b1.labels) == ("b1", 2, ("amd64", "big"))
    assert b1.tls == EngineTLS(tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    assert (local.capacity, local.labels, local.tls) == (1, (), None)
    assert config.repos[0].labels == ("big",)
    assert load(tmp_path, "").engines == ()


def test_plain_tcp_is_refused_off_loopback_unless_insecure(tmp_path):
    exc = error(tmp_path, '[[engine]]\nname = "b1"\nurl = "tcp://10.0.0.5:2375"\n')
    assert exc.key == "engine[1].url" and exc.line == 5
    assert "without tls" in str(exc) and "insecure = true" in str(exc)
    for body in (
        'url = "tcp://127.0.0.1:2375"\n',
        'url = "tcp://localhost:2375"\n',
        'url = "tcp://10.0.0.5:2375"\ninsecure = true\n',
    ):
        (engine,) = load(tmp_path, f'[[engine]]\nname = "b1"\n{body}').engines
        assert engine.plaintext


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('name = "b"\nurl = "http://h:1"\n', "engine[1].url", "must start with tcp://"),
        ('name = "b"\nurl = "ssh://"\n', "engine[1].url", "names no host"),
        ('name = "b/c"\nurl = "unix:///s"\n', "engine[1].name", "invalid value"),
        ('name = "b"\nurl = "unix:///s"\ncapacity = 0\n', "engine[1].capacity", "at least 1"),
        ('name = "b"\nurl = "unix:///s"\ntls = { ca = "a" }\n', "engine[1].tls", "tls applies"),
        ('name = "b"\nurl = "tcp://h:1"\ntls = { ca = "a" }\n', "engine[1].tls.cert", "missing"),
        ('name = "b"\nurl = "unix:///s"\nlable = ["x"]\n', "engine[1].lable", "did you mean"),
        ('name = "b"\nurl = "tcp://h:1"\nssh_key = "k"\n', "engine[1].ssh_key", "ssh:// engines"),
    ],
)
def test_bad_engine_blocks_name_key_and_line(tmp_path, body, key, words):
    exc = error(tmp_path, f"[[engine]]\n{body}")
    assert exc.key == key and exc.line is not None
    assert words in str(exc)


def test_duplicate_engine_names(tmp_path):
    block = '[[engine]]\nname = "b1"\nurl = "unix:///s"\n'
    exc = error(tmp_path, block + block)
    assert exc.key == "engine[2].name" and "duplicate engine name 'b1'" in str(exc)
    assert "line 4" in str(exc)


def test_check_config_reports_unreadable_tls_and_unplaceable_repos(tmp_path):
    body = (
        '[[engine]]\nname = "b1"\nurl = "tcp://10.0.0.5:2376"\n'
        f'tls = {{ ca = "{tmp_path}/nope.pem", cert = "c", key = "k" }}\nlabels = ["amd64"]\n'
        '[[engine]]\nname = "b2"\nurl = "tcp://10.0.0.6:2375"\ninsecure = true\n'
        '[[repo]]\nname = "ok"\npath = "/nonexistent/ok"\nlabels = ["amd64"]\n'
        '[[repo]]\nname = "arm"\npath = "/nonexistent/arm"\nlabels = ["arm64"]\n'
    )
    config = load(tmp_path, body)
    problems = check_config(config, environ={})
    found = {(p.key, p.severity): p for p in problems}
    tls = [p for p in problems if p.key == "engine[1].tls"]
    assert len(tls) == 3 and all(p.line == 6 for p in tls)
    assert any("nope.pem is not readable" in p.message for p in tls)
    assert "plain tcp://" in found["engine[2].insecure", "warning"].message
    never = found["repo[2].labels", "error"]
    assert never.message == (
        "repository arm can never be placed: requires labels arm64 and no engine has all of them"
    )
    assert ("repo[1].labels", "error") not in found


def test_labels_without_engines_can_never_be_placed(tmp_path):
    text = config_text(tmp_path, '[[repo]]\nname = "r"\npath = "/x"\nlabels = ["gpu"]\n')
    config = parse_config(text, tmp_path / "scratchd.toml")
    (problem,) = [p for p in check_config(config, environ={}) if p.key == "repo[1].labels"]
    assert "no [[engine]] is configured" in problem.message
