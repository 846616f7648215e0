"""Sinks in scratchd.toml: parsing, errors with file and line, check-config, notify test."""

from __future__ import annotations

import pytest

from scratchd.cli import main
from scratchd.config import ConfigError, parse_config
from tests.git.repos import WorkRepo
from tests.notify.conftest import SECRET

BASE = '[daemon]\nstate_dir = "{state}"\n'


def parse(tmp_path, text: str):
    path = tmp_path / "scratchd.toml"
    full = BASE.format(state=tmp_path / "state") + text
    path.write_text(full)
    return parse_config(full, path)


def line_of(text: str, needle: str, skip: int = 0) -> int:
    """1-based line of the (skip+1)-th line containing ``needle``, counting BASE's 2 lines."""
    hits = [i for i, line in enumerate(text.splitlines(), start=3) if needle in line]
    return hits[skip]


def test_global_and_repository_sinks(tmp_path):
    text = (
        '[notify]\nweb_url = "https://ci.example.com/"\ngive_up_after = "2h"\n\n'
        '[notify.sink.ops]\ntype = "webhook"\nurl = "https://hooks.example.com/x"\n'
        'secret_credential = "hook"\non = ["build.finished", "broken"]\nrepos = ["a"]\n\n'
        '[[repo]]\nname = "a"\npath = "/srv/a"\n\n'
        '[[repo]]\nname = "b"\npath = "/srv/b"\n\n'
        '[repo.notify.team]\ntype = "apprise"\nurl = "mailto://u:p@example.com"\non = ["fixed"]\n'
    )
    notify = parse(tmp_path, text).notify
    assert notify.web_url == "https://ci.example.com" and notify.give_up_after == 7200
    ops, team = notify.sinks
    assert (ops.name, ops.type, ops.on, ops.repos) == (
        "ops",
        "webhook",
        ("finished", "broken"),
        ("a",),
    )
    assert (team.name, team.repos, team.on) == ("team", ("b",), ("fixed",))
    assert notify.sinks_for("build.fixed", "b") == ["team"]
    assert notify.sinks_for("build.finished", "a") == ["ops"]
    assert notify.sinks_for("build.finished", "b") == []
    assert "u:p" not in repr(team) and "u:p" not in str(notify)  # the URL is a Secret


@pytest.mark.parametrize(
    ("sink", "needle", "message"),
    [
        ('type = "webhook"\nurl = "https://h/x"\non = ["finsihed"]\n', "on =", "unknown event"),
        ('type = "webhook"\nurl = "ftp://tok3n@h/x"\n', "url =", "not an http(s) URL"),
        ('type = "apprise"\nurl = "no scheme here"\n', "url =", "not a URL"),
        ('type = "webhok"\nurl = "https://h/x"\n', "type =", "must be one of"),
        ('type = "exec"\n', "[notify.sink.s]", "needs command"),
        ('type = "exec"\ncommand = ["x"]\nurl = "https://h"\n', "url =", "unknown key"),
        ('type = "webhook"\nurl = "https://h/x"\nsecret_fil = "/x"\n', "secret_fil", "did you"),
    ],
)
def test_sink_errors_name_file_key_and_line(tmp_path, sink, needle, message):
    text = f"[notify.sink.s]\n{sink}"
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, text)
    assert caught.value.line == line_of(text, needle)
    assert caught.value.path == str(tmp_path / "scratchd.toml")
    assert message in str(caught.value)
    assert "tok3n" not in str(caught.value)


def test_repository_sink_errors_point_inside_the_right_block(tmp_path):
    text = (
        '[[repo]]\nname = "a"\npath = "/srv/a"\n[repo.notify.x]\ntype = "webhook"\n'
        'url = "https://h/x"\n\n[[repo]]\nname = "b"\npath = "/srv/b"\n\n'
        '[repo.notify.y]\ntype = "webhook"\nurl = "https://h/y"\non = ["nope"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse(tmp_path, text)
    assert caught.value.line == line_of(text, "on =")
    assert caught.value.key == "repo[2].notify.y.on"


def test_duplicate_sink_names(tmp_path):
    text = (
        '[notify.sink.x]\ntype = "exec"\ncommand = ["true"]\n\n'
        '[[repo]]\nname = "a"\npath = "/srv/a"\n'
        '[repo.notify.x]\ntype = "exec"\ncommand = ["true"]\n'
    )
    with pytest.raises(ConfigError, match=r"duplicate sink name 'x' \(first used on line 3\)"):
        parse(tmp_path, text)


def test_check_config_reports_sink_problems_with_file_and_line(tmp_path, capsys):
    repo = WorkRepo(tmp_path / "app")
    repo.commit("x", files={"wercker.yml": "build:\n  steps: []\n"})
    bad_secret = tmp_path / "bad.secret"
    bad_secret.write_text("not base64 !!!\n")
    bad_secret.chmod(0o600)
    text = (
        f'[[repo]]\nname = "app"\npath = "{repo.path}"\n\n'
        '[notify.sink.missing]\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
        f'secret_file = "{tmp_path / "nope.secret"}"\n\n'
        '[notify.sink.garbled]\ntype = "webhook"\nurl = "http://127.0.0.1:9/x"\n'
        f'secret_file = "{bad_secret}"\n\n'
        '[notify.sink.chat]\ntype = "apprise"\nurl = "nosuchservice://tok3n@x"\n\n'
        '[notify.sink.after]\ntype = "exec"\ncommand = ["/no/such/program"]\n\n'
        '[notify.sink.other]\ntype = "exec"\ncommand = ["true"]\nrepos = ["ghost"]\n'
    )
    path = tmp_path / "scratchd.toml"
    path.write_text(BASE.format(state=tmp_path / "state") + text)
    assert main(["check-config", "--config", str(path)]) == 1
    out, err = capsys.readouterr()
    problems = err.splitlines()

    def reported(needle: str, skip: int, message: str) -> None:
        where = f"{path}:{line_of(text, needle, skip)}:"
        assert any(p.startswith(where) and message in p for p in problems), (where, err)

    reported("secret_file", 0, "cannot read")
    reported("secret_file", 1, "not base64")
    reported("nosuchservice", 0, "apprise does not understand")
    reported("/no/such/program", 0, "not found")
    reported("ghost", 0, "no repository named 'ghost'")
    assert "tok3n" not in out + err
    assert "notify chat: apprise on queued, started, finished, broken, fixed" in out


def test_notify_test_sends_a_signed_sample(tmp_path, capsys, receiver, secret_file):
    from standardwebhooks.webhooks import Webhook

    path = tmp_path / "scratchd.toml"
    text = (
        f'[notify.sink.hook]\ntype = "webhook"\nurl = "{receiver.url}"\n'
        f'secret_file = "{secret_file}"\n'
    )
    path.write_text(BASE.format(state=tmp_path / "state") + text)
    assert main(["notify", "test", "--config", str(path), "--sink", "hook"]) == 0
    (request,) = receiver.accepted
    Webhook(SECRET).verify(request["body"], request["headers"])
    assert request["json"]["type"] == "build.finished"
    assert request["headers"]["webhook-id"] in capsys.readouterr().out
    assert main(["notify", "test", "--config", str(path), "--sink", "nope"]) == 2
    receiver.stop()
    assert main(["notify", "test", "--config", str(path), "--sink", "hook"]) == 1
    assert "cannot reach the receiver" in capsys.readouterr().err


def test_the_example_config_documents_every_notify_key():
    from pathlib import Path

    from scratchd.config import load_config
    from scratchd.config.notify import _SINK_KEYS, NotifyConfig

    example = Path(__file__).parents[2] / "config" / "scratchd.toml"
    notify = load_config(example).notify
    assert [s.name for s in notify.sinks] == ["ops", "after", "cities-team"]
    assert notify.sinks_for("build.broken", "cities") == ["ops", "cities-team"]
    text = example.read_text()
    keys = [k for k in NotifyConfig.__dataclass_fields__ if k != "sinks"] + list(_SINK_KEYS)
    for key in keys:
        assert f"{key} = " in text, f"{key} is not in the example"


def test_the_readme_example_is_a_valid_config(tmp_path):
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("## Notifications", 1)[1]
    example = section.split("```toml\n", 1)[1].split("```", 1)[0]
    notify = parse(tmp_path, example).notify
    assert {s.name: s.type for s in notify.sinks} == {
        "ops": "webhook",
        "after": "exec",
        "team": "apprise",
    }
