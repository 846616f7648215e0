"""Group 3: token auth as Quay does it, with a token server written here."""

from __future__ import annotations

import logging
import re

import pytest
import requests

from scratchd.errors import AuthError
from scratchd.models import Secret
from scratchd.registry.credentials import Credential, CredentialStore
from scratchd.registry.reference import parse_repository
from tests.registry.conftest import PASSWORD, USER, make_client
from tests.registry.servers import Fault


def _store(host: str, user: str = USER, password: str = PASSWORD) -> CredentialStore:
    return CredentialStore(explicit={host: Credential(user, Secret(password))}, environ={})


def test_robot_account_pushes_with_a_bearer_token(token_registry, token_server, bake_image):
    image = bake_image("token")
    ref = parse_repository(f"{token_registry.host}/org/app")

    result = make_client(credentials=_store(token_registry.host)).push(image, ref, ["a", "b"])

    assert result.digest == image.digest
    assert token_server.requests[0] == {"user": USER, "scopes": ["repository:org/app:pull,push"]}
    assert len(token_server.requests) == 1  # one token, cached for the whole push
    anonymous = requests.get(f"{token_registry.url}/v2/org/app/manifests/a", timeout=10)
    assert anonymous.status_code == 401  # the registry really enforces tokens


def test_token_expired_mid_push_is_refreshed(token_registry, token_server, bake_image, proxy_for):
    # The token claims 300 s to the client but the registry sees it expire
    # (exp plus its 60 s leeway) in 2 s; the manifest PUT is held back 3 s.
    token_server.lifetime = -58
    proxy = proxy_for(token_registry)
    proxy.add(Fault("PUT", "/manifests/", action="delay", delay=3.0))
    image = bake_image("expiring")

    result = make_client(credentials=_store(proxy.host)).push(
        image, parse_repository(f"{proxy.host}/org/exp"), ["latest"]
    )

    assert result.digest == image.digest
    assert len(token_server.requests) == 2
    statuses = [s.status for s in proxy.seen if s.method == "PUT" and "/manifests/" in s.path]
    assert statuses == [401, 201]


def test_token_without_push_scope_is_denied(token_registry, token_server, bake_image, caplog):
    caplog.set_level(logging.DEBUG)
    client = make_client(credentials=_store(token_registry.host, "reader", "reader-pass"))

    with pytest.raises(AuthError) as caught:
        client.push(bake_image("no"), parse_repository(f"{token_registry.host}/org/ro"), ["latest"])

    assert caught.value.code == "DENIED"
    # The scope text is the registry's own, and Distribution lists the actions
    # in no fixed order ("pull,push" or "push,pull").
    scope = re.search(r"repository:org/ro:([a-z,]+)", str(caught.value))
    assert scope is not None and set(scope.group(1).split(",")) == {"pull", "push"}
    assert "reader-pass" not in f"{caught.value} {caplog.text}"
    tags = requests.get(f"{token_registry.url}/v2/org/ro/tags/list", timeout=10)
    assert tags.status_code == 401


def test_wrong_password_at_the_token_server(token_registry, bake_image):
    client = make_client(credentials=_store(token_registry.host, USER, "nope-nope"))
    with pytest.raises(AuthError, match=r"token server .* refused user 'ci\+robot'") as caught:
        client.push(bake_image("x"), parse_repository(f"{token_registry.host}/org/app"), ["x"])
    assert "nope-nope" not in str(caught.value)


def test_mount_merges_the_source_scope(token_registry, token_server, bake_image):
    client = make_client(credentials=_store(token_registry.host))
    image = bake_image("merge")
    client.push(image, parse_repository(f"{token_registry.host}/org/one"), ["latest"])

    result = client.push(image, parse_repository(f"{token_registry.host}/org/two"), ["latest"])

    assert result.blobs_mounted == 2
    merged = token_server.requests[-1]["scopes"]
    assert "repository:org/one:pull" in merged and "repository:org/two:pull,push" in merged


def test_token_is_cached_until_expires_in(token_server):
    """Unit-level: the real token server, a fake clock; no registry needed."""
    from scratchd.registry.auth import Authenticator
    from scratchd.registry.challenge import Challenge
    from scratchd.registry.http import HttpClient

    now = [1000.0]
    token_server.expires_in = 100
    auth = Authenticator(_store("reg.example"), HttpClient(), clock=lambda: now[0])
    realm = {"realm": token_server.realm, "service": token_server.service}
    auth.set_challenge("reg.example", Challenge("bearer", realm))
    auth.want("reg.example", "org/app", ["repository:org/app:pull,push"])

    first = auth.header("reg.example", "org/app")
    now[0] += 80
    assert auth.header("reg.example", "org/app") == first
    now[0] += 15  # past 90 % of expires_in: renew before the registry refuses it
    assert auth.header("reg.example", "org/app") != first
    assert len(token_server.requests) == 2


def test_identity_token_uses_the_refresh_token_grant(token_registry, token_server, bake_image):
    token_server.refresh_tokens["idt-0123456789"] = USER
    store = CredentialStore(
        explicit={token_registry.host: Credential("", identity_token=Secret("idt-0123456789"))},
        environ={},
    )
    image = bake_image("identity token")

    result = make_client(credentials=store).push(
        image, parse_repository(f"{token_registry.host}/org/idt"), ["latest"]
    )

    assert result.digest == image.digest
    assert token_server.requests[-1]["user"] == USER


def test_anonymous_push_to_a_token_registry_is_denied(token_registry, token_server, bake_image):
    with pytest.raises(AuthError) as caught:
        make_client().push(bake_image("anon"), parse_repository(f"{token_registry.host}/o/a"), [])
    assert caught.value.code == "DENIED"
    assert token_server.requests[0]["user"] == ""  # asked anonymously, got no actions


def test_pushes_through_one_shared_client_reuse_tokens_and_mount_but_never_lend_a_token(
    token_registry, token_server, bake_image
):
    """The daemon's shape: one long-lived client, credentials handed in at each push."""
    shared = make_client()
    image = bake_image("shared")
    host = token_registry.host

    first = shared.with_credentials(_store(host)).push(
        image, parse_repository(f"{host}/org/one"), ["latest"]
    )
    again = shared.with_credentials(_store(host)).push(
        image, parse_repository(f"{host}/org/one"), ["again"]
    )
    assert first.blobs_mounted == 0 and again.blobs_skipped == 2
    assert len(token_server.requests) == 1  # the second push reused the first one's token

    other = shared.with_credentials(_store(host)).push(
        image, parse_repository(f"{host}/org/two"), ["latest"]
    )
    assert other.blobs_mounted == 2 and other.bytes_uploaded == 0

    with pytest.raises(AuthError) as caught:  # robot's cached token is not reader's
        shared.with_credentials(_store(host, "reader", "reader-pass")).push(
            image, parse_repository(f"{host}/org/one"), ["reader"]
        )
    assert caught.value.code == "DENIED"
    assert token_server.requests[-1]["user"] == "reader"
