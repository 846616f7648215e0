"""Group 2: htpasswd Basic auth over TLS with a CA made by the test."""

from __future__ import annotations

import logging

import pytest
import requests

from scratchd.errors import AuthError, RegistryError
from scratchd.models import Secret
from scratchd.registry.credentials import Credential, CredentialStore
from scratchd.registry.reference import parse_repository
from tests.registry.conftest import PASSWORD, USER, make_client


def _store(host: str, password: str) -> CredentialStore:
    return CredentialStore(explicit={host: Credential(USER, Secret(password))}, environ={})


def test_right_password_pushes_over_tls(basic_tls_registry, tls_files, bake_image):
    reg = basic_tls_registry
    image = bake_image("tls")
    client = make_client(credentials=_store(reg.host, PASSWORD), ca_file=str(tls_files.ca))

    result = client.push(image, parse_repository(f"{reg.host}/team/tls"), ["latest"])

    assert result.digest == image.digest
    got = requests.head(
        f"https://{reg.host}/v2/team/tls/manifests/latest",
        auth=(USER, PASSWORD), verify=str(tls_files.ca), timeout=10,
        headers={"Accept": image.media_type},
    )  # fmt: skip
    assert got.headers["Docker-Content-Digest"] == image.digest


def test_wrong_password_is_a_clear_error_without_the_password(
    basic_tls_registry, tls_files, bake_image, caplog
):
    reg = basic_tls_registry
    wrong = "wrong-Pa55w0rd-also-secret"
    client = make_client(credentials=_store(reg.host, wrong), ca_file=str(tls_files.ca))
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthError) as caught:
        client.push(bake_image("x"), parse_repository(f"{reg.host}/team/tls"), ["latest"])

    error = caught.value
    assert error.status == 401 and error.code == "UNAUTHORIZED"
    assert USER in str(error) and "rejected" in str(error)
    text = f"{error!s} {error!r} {caplog.text}"
    assert wrong not in text and PASSWORD not in text


def test_no_credentials_names_the_ways_to_give_them(basic_tls_registry, tls_files, bake_image):
    reg = basic_tls_registry
    client = make_client(ca_file=str(tls_files.ca))
    with pytest.raises(AuthError, match="requires a username and password"):
        client.push(bake_image("x"), parse_repository(f"{reg.host}/team/tls"), ["latest"])


def test_untrusted_certificate_is_refused(basic_tls_registry, bake_image):
    """Loopback may fall back to plain HTTP, but a TLS-only server must report TLS."""
    reg = basic_tls_registry
    client = make_client(credentials=_store(reg.host, PASSWORD))
    with pytest.raises(RegistryError, match=r"TLS failed.*--ca-file"):
        client.push(bake_image("x"), parse_repository(f"{reg.host}/team/tls"), ["latest"])


def test_insecure_registry_skips_verification(basic_tls_registry, bake_image):
    reg = basic_tls_registry
    client = make_client(credentials=_store(reg.host, PASSWORD), insecure=[reg.host])
    image = bake_image("insecure")
    assert client.push(image, parse_repository(f"{reg.host}/team/ins"), ["latest"]).digest == (
        image.digest
    )
