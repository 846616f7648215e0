"""scratchd check-config: summary, problems with file:line, exit status."""

from __future__ import annotations

from tests.cli.state_env import make_env


def test_ok_config_prints_a_summary_without_secrets(tmp_path, capsys, monkeypatch):
    env = make_env(tmp_path)
    token = tmp_path / "token"
    token.write_text("hunter22-secret")
    token.chmod(0o600)
    env.config.write_text(
        env.config.read_text()
        + 'schedule = "0 3 * * *"\n'
        + f'[registry."quay.io"]\nusername = "org+robot"\npassword_file = "{token}"\n'
    )
    (tmp_path / "state").mkdir()
    code, out, err = env.cli(capsys, "check-config")
    assert code == 0, err
    assert f"config: {env.config}" in out
    assert "registry quay.io: user org+robot, password from file" in out
    assert "app: " in out and "branches main, feature/*" in out and "cron '0 3 * * *'" in out
    assert out.rstrip().endswith("OK: 0 error(s), 0 warning(s)")
    assert "hunter22" not in out + err


def test_problems_fail_with_file_and_line(tmp_path, capsys):
    env = make_env(tmp_path)
    env.config.write_text(
        env.config.read_text() + f'[[repo]]\nname = "gone"\npath = "{tmp_path / "nope"}"\n'
    )
    code, out, err = env.cli(capsys, "check-config")
    assert code == 1
    assert f"{env.config}:10: repo[2].path: error: " in err
    assert "FAILED: 1 error(s)" in out


def test_invalid_file_is_one_error(tmp_path, capsys):
    env = make_env(tmp_path)
    env.config.write_text(env.config.read_text() + "build_every_comit = true\n")
    code, out, err = env.cli(capsys, "check-config")
    assert code == 1 and out == ""
    assert f"{env.config}:8: repo[1].build_every_comit: unknown key; did you mean" in err


def test_default_path_from_environment(tmp_path, capsys, monkeypatch):
    from scratchd.cli import main

    env = make_env(tmp_path)
    (tmp_path / "state").mkdir()
    monkeypatch.setenv("SCRATCHD_CONFIG", str(env.config))
    assert main(["check-config"]) == 0
    assert f"config: {env.config}" in capsys.readouterr().out


def test_secrets_file_syntax_is_checked_without_quoting_it(tmp_path, capsys):
    env = make_env(tmp_path)
    (tmp_path / "state").mkdir()
    secrets = tmp_path / "app.env"
    secrets.write_text("GOOD=one\nthis is hunter22 not an assignment\n")
    secrets.chmod(0o600)
    env.config.write_text(env.config.read_text() + f'secrets_file = "{secrets}"\n')
    code, _, err = env.cli(capsys, "check-config")
    assert code == 1
    assert f"{env.config}:8: repo[1].secrets_file: error: {secrets}:2: " in err
    assert "hunter22" not in err


def test_absurd_bounds_are_refused_with_file_and_line(tmp_path, capsys):
    env = make_env(tmp_path)
    text = env.config.read_text().replace(
        "[daemon]\n", '[daemon]\nmax_concurrent_builds = 1000000000\nretry_delay = "99999999999d"\n'
    )
    env.config.write_text(text)
    code, out, err = env.cli(capsys, "check-config")
    assert code == 1 and out == ""
    assert f"{env.config}:2: daemon.max_concurrent_builds: must be at most 256" in err
    env.config.write_text(text.replace("max_concurrent_builds = 1000000000\n", ""))
    code, out, err = env.cli(capsys, "check-config")
    assert code == 1
    assert f'{env.config}:2: daemon.retry_delay: must be at most "7d"' in err
