"""Group 6 and the credential order: explicit, daemon config, docker config, auth file."""

from __future__ import annotations

import base64
import json
import os
import stat

import pytest

from scratchd.errors import CredentialError
from scratchd.models import Secret
from scratchd.registry.credentials import Credential, CredentialStore
from scratchd.registry.reference import parse_repository
from tests.registry.conftest import PASSWORD, USER, make_client

HOST = "registry.example:5000"


def _auth(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _write(path, data) -> os.PathLike:
    path.write_text(json.dumps(data))
    return path


def _helper(directory, name: str, body: str):
    """A ``docker-credential-<name>`` shell script on PATH, as docker would run it."""
    directory.mkdir(exist_ok=True)
    script = directory / f"docker-credential-{name}"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


def test_docker_config_auth_entry(tmp_path):
    config = _write(tmp_path / "config.json", {"auths": {HOST: {"auth": _auth("u", "p:w")}}})
    cred = CredentialStore(docker_config=config, environ={}).get(HOST)
    assert cred.username == "u" and cred.password.reveal() == "p:w"
    assert "p:w" not in repr(cred)


def test_identity_token_and_url_keys(tmp_path):
    config = _write(
        tmp_path / "config.json",
        {"auths": {f"https://{HOST}/v1/": {"auth": _auth("u", "x"), "identitytoken": "idt"}}},
    )
    cred = CredentialStore(docker_config=config, environ={}).get(HOST)
    assert cred.identity_token.reveal() == "idt" and cred.password is None


def test_docker_hub_is_found_under_its_index_url(tmp_path):
    key = "https://index.docker.io/v1/"
    config = _write(tmp_path / "config.json", {"auths": {key: {"auth": _auth("hub", "pw")}}})
    host = parse_repository("org/app").registry
    assert CredentialStore(docker_config=config, environ={}).get(host).username == "hub"


def test_docker_config_env_and_registry_auth_file(tmp_path):
    (tmp_path / "dc").mkdir()
    _write(tmp_path / "dc" / "config.json", {"auths": {}})
    auth_file = _write(tmp_path / "auth.json", {"auths": {HOST: {"auth": _auth("pod", "man")}}})
    env = {"DOCKER_CONFIG": str(tmp_path / "dc"), "REGISTRY_AUTH_FILE": str(auth_file)}
    assert CredentialStore(environ=env).get(HOST).username == "pod"
    assert CredentialStore(environ=env).get("other.example") is None  # anonymous


def test_precedence_explicit_then_config_then_docker(tmp_path):
    config = _write(tmp_path / "config.json", {"auths": {HOST: {"auth": _auth("docker", "d")}}})
    explicit = {HOST: Credential("cli", Secret("c"))}
    configured = {HOST: ("daemon", Secret("s"))}
    store = lambda **kw: CredentialStore(docker_config=config, environ={}, **kw)  # noqa: E731
    assert store(explicit=explicit, configured=configured).get(HOST).username == "cli"
    daemon = store(configured=configured).get(HOST)
    assert daemon.username == "daemon" and daemon.password.reveal() == "s"
    assert store().get(HOST).username == "docker"


def test_cred_helper_per_host_wins_then_creds_store(tmp_path, on_path):
    _helper(on_path, "perhost", 'echo \'{"Username":"h","Secret":"hs"}\'\n')
    _helper(on_path, "global", 'read s; echo "{\\"Username\\":\\"g-$s\\",\\"Secret\\":\\"gs\\"}"\n')
    config = _write(
        tmp_path / "config.json",
        {
            "auths": {HOST: {"auth": _auth("file", "f")}},
            "credHelpers": {HOST: "perhost"},
            "credsStore": "global",
        },
    )
    store = CredentialStore(docker_config=config, environ={})
    assert store.get(HOST).username == "h"
    assert store.get("quay.io").username == "g-quay.io"  # the server URL arrives on stdin


def test_helper_not_found_answer_means_anonymous(tmp_path, on_path):
    _helper(on_path, "empty", "echo 'credentials not found in native keychain'; exit 1\n")
    config = _write(tmp_path / "config.json", {"credsStore": "empty"})
    assert CredentialStore(docker_config=config, environ={}).get(HOST) is None


def test_token_username_from_helper_is_an_identity_token(tmp_path, on_path):
    _helper(on_path, "tok", 'echo \'{"Username":"<token>","Secret":"refresh"}\'\n')
    config = _write(tmp_path / "config.json", {"credsStore": "tok"})
    cred = CredentialStore(docker_config=config, environ={}).get(HOST)
    assert cred.identity_token.reveal() == "refresh"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("echo 'keychain locked' >&2; exit 3\n", r"failed for .* \(exit 3\): keychain locked"),
        ("echo not-json\n", "unreadable output"),
    ],
)
def test_broken_helper_is_a_clear_error(tmp_path, on_path, body, message):
    _helper(on_path, "broken", body)
    config = _write(tmp_path / "config.json", {"credHelpers": {HOST: "broken"}})
    with pytest.raises(CredentialError, match=message) as caught:
        CredentialStore(docker_config=config, environ={}).get(HOST)
    assert "docker-credential-broken" in str(caught.value)


def test_missing_helper_names_the_config_file(tmp_path, on_path):
    config = _write(tmp_path / "config.json", {"credHelpers": {HOST: "nonexistent-xyz"}})
    with pytest.raises(CredentialError, match=r"config\.json: .*nonexistent-xyz is not on PATH"):
        CredentialStore(docker_config=config, environ={}).get(HOST)


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "invalid JSON"), ('{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}', "base64")],
)
def test_bad_docker_config_names_the_file(tmp_path, content, message):
    config = tmp_path / "config.json"
    config.write_text(content)
    with pytest.raises(CredentialError, match=message) as caught:
        CredentialStore(docker_config=config, environ={}).get("h")
    assert str(config) in str(caught.value)


def test_helper_on_path_pushes_to_a_real_registry(
    basic_tls_registry, tls_files, bake_image, tmp_path, on_path
):
    calls = tmp_path / "helper-calls"
    _helper(
        on_path,
        "scratchdtest",
        f'read server; echo "$server" >> {calls}\n'
        f'printf \'{{"Username":"{USER}","Secret":"{PASSWORD}"}}\'\n',
    )
    reg = basic_tls_registry
    config = _write(tmp_path / "config.json", {"credHelpers": {reg.host: "scratchdtest"}})
    store = CredentialStore(docker_config=config, environ={})
    image = bake_image("from a helper")

    result = make_client(credentials=store, ca_file=str(tls_files.ca)).push(
        image, parse_repository(f"{reg.host}/team/helper"), ["latest"]
    )

    assert result.digest == image.digest
    assert calls.read_text().split() == [reg.host]  # asked once, for this host


def test_broken_helper_fails_the_push_clearly(
    basic_tls_registry, tls_files, bake_image, tmp_path, on_path
):
    _helper(on_path, "scratchdbroken", "echo 'helper exploded' >&2; exit 1\n")
    reg = basic_tls_registry
    config = _write(tmp_path / "config.json", {"credHelpers": {reg.host: "scratchdbroken"}})
    client = make_client(
        credentials=CredentialStore(docker_config=config, environ={}), ca_file=str(tls_files.ca)
    )
    with pytest.raises(CredentialError, match=r"docker-credential-scratchdbroken failed.*exploded"):
        client.push(bake_image("x"), parse_repository(f"{reg.host}/team/helper"), ["latest"])
