"""A hostile registry: credentials stay with their registry, responses stay bounded.

Each test pushes to :mod:`tests.registry.hostile` (a real loopback server
misbehaving on purpose); a second instance on another address or port is
the witness that records whether any ``Authorization`` header reached it.
"""

from __future__ import annotations

import logging
import socket
import time
import tracemalloc

import pytest

from scratchd.errors import AuthError, RegistryError
from scratchd.models import Secret
from scratchd.registry.credentials import Credential, CredentialStore
from scratchd.registry.http import HttpClient, HttpLimits
from scratchd.registry.reference import parse_repository
from tests.registry.conftest import PASSWORD, USER, fast_retry, make_client
from tests.registry.hostile import TOKEN, Hostile


def _creds(host: str) -> CredentialStore:
    return CredentialStore(explicit={host: Credential(USER, Secret(PASSWORD))}, environ={})


def _push(registry: Hostile, image, **kwargs):
    kwargs.setdefault("credentials", _creds(registry.host))
    client = make_client(**kwargs)
    return client.push(image, parse_repository(f"{registry.host}/team/app"), ["latest"])


# -- 1. credentials go only where they belong ----------------------------------


def test_upload_location_on_another_host_gets_no_credentials(bake_image):
    with (
        Hostile(bind="127.0.0.2").running() as witness,
        Hostile(basic=(USER, PASSWORD)).running() as registry,
    ):
        registry.upload_location = f"{witness.url}/elsewhere/upload"
        _push(registry, bake_image("location"))

        assert witness.requests("PUT", "/elsewhere/upload"), "the blobs went to the witness"
        assert witness.authorizations() == []
        assert all(s.authorization for s in registry.requests("PUT"))  # manifests: ours


def test_upload_location_on_another_port_over_tls_gets_no_credentials(bake_image, tls_files):
    with (
        Hostile(tls=tls_files).running() as witness,
        Hostile(tls=tls_files, basic=(USER, PASSWORD)).running() as registry,
    ):
        registry.upload_location = f"{witness.url}/elsewhere/upload"
        _push(registry, bake_image("port"), ca_file=str(tls_files.ca))

        assert witness.requests("PUT"), "the blobs went to the witness"
        assert witness.authorizations() == []


def test_bearer_token_stays_with_the_registry_it_was_issued_for(bake_image):
    with (
        Hostile(bind="127.0.0.2").running() as witness,
        Hostile().running() as tokens,
        Hostile().running() as registry,
    ):
        registry.realm = f"{tokens.url}/token"
        registry.upload_location = f"{witness.url}/elsewhere/upload"
        _push(registry, bake_image("bearer"))

        assert f"Bearer {TOKEN}" in registry.authorizations()
        assert witness.requests("PUT") and witness.authorizations() == []


def test_https_registry_cannot_send_an_upload_to_plain_http(bake_image, tls_files):
    with (
        Hostile().running() as witness,
        Hostile(tls=tls_files, basic=(USER, PASSWORD)).running() as registry,
    ):
        registry.upload_location = f"http://{witness.host}/elsewhere/upload"
        with pytest.raises(RegistryError) as caught:
            _push(registry, bake_image("downgrade"), ca_file=str(tls_files.ca))

        assert "plain http" in str(caught.value) and registry.host in str(caught.value)
        assert witness.seen == []


def test_redirect_from_https_to_http_is_not_followed(bake_image, tls_files):
    with (
        Hostile().running() as witness,
        Hostile(tls=tls_files, basic=(USER, PASSWORD)).running() as registry,
    ):
        registry.head_redirect = f"http://{witness.host}/blob"
        with pytest.raises(RegistryError) as caught:
            _push(registry, bake_image("redirect"), ca_file=str(tls_files.ca))

        assert registry.host in str(caught.value) and "redirected to http://" in str(caught.value)
        assert witness.seen == []


def test_redirect_to_another_origin_drops_the_credentials(bake_image):
    with (
        Hostile(bind="127.0.0.2").running() as witness,
        Hostile(basic=(USER, PASSWORD)).running() as registry,
    ):
        registry.head_redirect = f"{witness.url}/blob"  # the witness answers 404: upload
        _push(registry, bake_image("redirect"))

        assert witness.requests("HEAD", "/blob") and witness.authorizations() == []


# -- 2. token realms ------------------------------------------------------------


def _loopback_name() -> str:
    """This machine's host name when it resolves to loopback: a realm that is not
    *named* loopback yet can be served here, so a leak would be seen."""
    name = socket.gethostname()
    try:
        address = socket.gethostbyname(name)
    except OSError:
        return ""
    return name if address.startswith("127.") and name != "localhost" else ""


def test_plain_http_realm_of_an_https_registry_is_refused(bake_image, tls_files):
    name = _loopback_name()
    with (
        Hostile(bind=socket.gethostbyname(name) if name else "127.0.0.1").running() as tokens,
        Hostile(tls=tls_files).running() as registry,
    ):
        port = tokens.host.rsplit(":", 1)[1]
        registry.realm = f"http://{name or 'realm.invalid'}:{port}/token"
        with pytest.raises(AuthError) as caught:
            _push(registry, bake_image("realm"), ca_file=str(tls_files.ca))

        assert "refusing token realm on plain http" in str(caught.value)
        assert tokens.seen == []  # not even a connection carried the credentials


def test_loopback_http_realm_is_allowed_and_its_first_use_is_logged(bake_image, tls_files, caplog):
    caplog.set_level(logging.INFO, logger="scratchd.registry.auth")
    with Hostile().running() as tokens, Hostile(tls=tls_files).running() as registry:
        registry.realm = f"{tokens.url}/token"
        first = make_client(credentials=_creds(registry.host), ca_file=str(tls_files.ca))
        ref = parse_repository(f"{registry.host}/team/app")
        first.push(bake_image("a"), ref, ["latest"])
        again = first.with_credentials(_creds(registry.host))  # the next push of a daemon
        again.push(bake_image("b"), parse_repository(f"{registry.host}/team/other"), ["x"])

        told = [r.getMessage() for r in caplog.records if "token server" in r.getMessage()]
        assert told == [f"registry {registry.host}: sending its credentials to token server "
                        f"{tokens.host}"]  # fmt: skip
        assert PASSWORD not in caplog.text
        assert len(tokens.requests("GET", "/token")) == 2  # two scopes, logged once
        assert tokens.requests("GET", "/token")[0].authorization.startswith("Basic ")


# -- 3. bounded responses ---------------------------------------------------------


def _limited(**limits) -> HttpClient:
    return HttpClient(HttpLimits(**limits))


@pytest.mark.parametrize("how", ["endless", "huge"])
def test_oversized_ping_body_is_a_clean_error_without_reading_it(how, bake_image):
    image = bake_image(how)
    with Hostile(ping_body=how).running() as registry:
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(RegistryError) as caught:
                _push(registry, image, http=_limited(max_response=1 << 20))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()

        assert time.monotonic() - started < 30
        assert peak < 16 << 20  # a 1 MiB cap, not the body's size
        text = str(caught.value)
        assert registry.host in text and "limit" in text
        assert len(registry.requests("GET", "/v2/")) == 1  # too large is not retried


@pytest.mark.parametrize("how", ["trickle", "slow-headers"])
def test_trickling_response_hits_the_request_deadline_and_is_retried(how, bake_image):
    image = bake_image(how)
    with Hostile(ping_body=how, trickle_every=0.2).running() as registry:
        started = time.monotonic()
        with pytest.raises(RegistryError) as caught:
            _push(registry, image, http=_limited(deadline=1.5), retry=fast_retry(attempts=2))
        elapsed = time.monotonic() - started

        assert 3.0 <= elapsed < 15  # two attempts of 1.5 s each, not 1000 bytes x 0.2 s
        assert registry.host in str(caught.value) and "deadline" in str(caught.value)
        assert "gave up" in str(caught.value)
        assert len(registry.requests("GET", "/v2/")) == 2


def test_oversized_token_response_is_a_clean_error(bake_image):
    with Hostile().running() as tokens, Hostile().running() as registry:
        registry.realm = f"{tokens.url}/token"
        image = bake_image("token")
        with pytest.raises(RegistryError) as caught:  # the 401 body fits, the token does not
            _push(registry, image, http=_limited(max_response=48))
        assert tokens.host in str(caught.value) and "limit" in str(caught.value)


def test_daemon_config_sets_the_registry_client_bounds(tmp_path, bake_image):
    from scratchd.cli.run import Daemon
    from scratchd.config import load_config

    path = tmp_path / "scratchd.toml"
    path.write_text('[daemon]\nregistry_max_response = "1KiB"\nregistry_request_timeout = "2m"\n')
    image = bake_image("configured")
    with Hostile(ping_body="endless").running() as registry:
        ref = parse_repository(f"{registry.host}/team/app")
        client = Daemon(load_config(path)).registry_clients()(ref, None)
        with pytest.raises(RegistryError) as caught:
            client.push(image, ref, ["latest"])

        assert "1024-byte limit" in str(caught.value) and registry.host in str(caught.value)
