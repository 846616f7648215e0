"""apprise (json:// and mailto:// to local receivers) and exec sinks, through the sender."""

from __future__ import annotations

import email
import email.policy
import json
import os
import socket
import sys

import pytest

from scratchd.notify import Sender
from tests.notify.conftest import build, config_from, drain

if os.environ.get("CI") != "true":  # CI installs the notify extra: missing is a failure
    pytest.importorskip("apprise")

SHORT = "00000000"  # the first 8 hex digits of the test builds' shas


class Mailbox:
    """aiosmtpd's handler: keeps every message it was given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


def sender(store, config) -> Sender:
    facts = {"subject": "Make the map faster", "author": "Grace", "email": "g@example.com"}
    return Sender(store, lambda: config, commit_facts=lambda repo, sha: facts)


def test_apprise_json_gets_the_human_message(tmp_path, store, receiver):
    url = f"json://127.0.0.1:{receiver.port}/hook"
    config = config_from(
        tmp_path,
        f'[notify]\nweb_url = "http://ci.local"\n\n[notify.sink.chat]\ntype = "apprise"\n'
        f'url = "{url}"\non = ["broken"]\n',
    )
    build(store, 1, passed=True)
    broken = build(store, 2, passed=False)
    drain(sender(store, config), lambda: receiver.accepted)
    (message,) = [r["json"] for r in receiver.accepted]
    assert message["title"] == f"app main #{broken} BROKEN"
    lines = message["message"].splitlines()
    assert lines[0] == f"app main #{broken} BROKEN: {SHORT} Make the map faster"
    assert "by Grace" in lines and "failed step: compile" in lines
    assert f"http://ci.local/builds/{broken}" in lines


def test_apprise_mailto_sends_a_mail(tmp_path, store, smtp):
    port, box = smtp
    url = f"mailto://127.0.0.1:{port}?from=ci@example.com&to=dev@example.com&mode=insecure"
    url_file = tmp_path / "team.url"
    url_file.write_text(url + "\n")
    config = config_from(
        tmp_path,
        f'[notify.sink.team]\ntype = "apprise"\nurl_file = "{url_file}"\non = ["finished"]\n',
    )
    build_id = build(store, 1, passed=True)
    drain(sender(store, config), lambda: box.messages)
    (mail,) = box.messages
    assert mail["Subject"] == f"app main #{build_id} passed"
    assert mail["To"] == "dev@example.com"
    text = mail.get_body(("plain",)).get_content()
    assert f"{SHORT} Make the map faster" in text and "took " in text


def test_apprise_failure_is_retried(tmp_path, store, receiver):
    url = f"json://127.0.0.1:{receiver.port}/hook"
    config = config_from(
        tmp_path,
        '[notify]\nretry_delay = "50ms"\n\n[notify.sink.chat]\ntype = "apprise"\n'
        f'url = "{url}"\non = ["finished"]\n',
    )
    receiver.script = [500]
    build(store, 1, passed=True)
    drain(sender(store, config), lambda: receiver.accepted)
    assert len(receiver.requests) == 2


def test_exec_gets_json_on_stdin_and_environment(tmp_path, store):
    out = tmp_path / "out"
    script = (
        "import json, os, sys\n"
        "event = json.load(sys.stdin)\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('SCRATCHD_')}\n"
        f"with open({str(out)!r}, 'a') as f: f.write(json.dumps([event, env]) + '\\n')\n"
    )
    (tmp_path / "after.py").write_text(script)
    command = json.dumps([sys.executable, str(tmp_path / "after.py")])
    config = config_from(
        tmp_path, f'[notify.sink.after]\ntype = "exec"\ncommand = {command}\non = ["finished"]\n'
    )
    build_id = build(store, 1, passed=False)
    drain(sender(store, config), lambda: out.exists())
    ((event, env),) = [json.loads(line) for line in out.read_text().splitlines()]
    assert event["type"] == "build.finished" and event["data"]["failed_step"] == "compile"
    assert env["SCRATCHD_EVENT"] == "build.finished"
    assert env["SCRATCHD_BUILD_ID"] == str(build_id)
    assert env["SCRATCHD_RESULT"] == "failed" and env["SCRATCHD_FAILED_STEP"] == "compile"
    assert env["SCRATCHD_COMMIT_SUBJECT"] == "Make the map faster"
    assert env["SCRATCHD_EVENT_ID"].startswith("msg_")


def test_exec_nonzero_exit_is_retried(tmp_path, store):
    marker = tmp_path / "tried"
    script = f"import os, sys\nfirst = not os.path.exists({str(marker)!r})\n"
    script += f"open({str(marker)!r}, 'a').write('x')\nsys.exit(3 if first else 0)\n"
    (tmp_path / "after.py").write_text(script)
    command = json.dumps([sys.executable, str(tmp_path / "after.py")])
    config = config_from(
        tmp_path,
        '[notify]\nretry_delay = "50ms"\n\n[notify.sink.after]\ntype = "exec"\n'
        f'command = {command}\non = ["finished"]\n',
    )
    build_id = build(store, 1, passed=True)
    (event,) = [e for e in store.events(build_id=build_id) if e.type == "build.finished"]
    drain(sender(store, config), lambda: any(d["delivered_at"] for d in store.deliveries(event.id)))
    assert marker.read_text() == "xx"
