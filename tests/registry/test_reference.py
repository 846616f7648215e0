"""Repository names and tags as Docker reads them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scratchd.errors import InvalidReferenceError
from scratchd.models import ImageRef
from scratchd.registry.reference import (
    is_loopback,
    parse_repository,
    qualify,
    registry_host,
    split_host,
    validate_tag,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("quay.io/org/app", ImageRef("quay.io", "org/app")),
        ("127.0.0.1:5000/team/app", ImageRef("127.0.0.1:5000", "team/app")),
        ("localhost/app", ImageRef("localhost", "app")),
        ("localhost:5000/a/b/c", ImageRef("localhost:5000", "a/b/c")),
        ("[::1]:5000/app", ImageRef("[::1]:5000", "app")),
        ("org/app", ImageRef("registry-1.docker.io", "org/app")),
        ("busybox", ImageRef("registry-1.docker.io", "library/busybox")),
        ("docker.io/busybox", ImageRef("registry-1.docker.io", "library/busybox")),
        ("index.docker.io/org/app", ImageRef("registry-1.docker.io", "org/app")),
        ("quay.io/org/my-app_v2.x", ImageRef("quay.io", "org/my-app_v2.x")),
        ("registry.hub.docker.com/org/app", ImageRef("registry-1.docker.io", "org/app")),
    ],
)
def test_parse_repository(text, expected):
    assert parse_repository(text) == expected


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("quay.io/org/app", ("quay.io", "org/app")),
        ("localhost:5000/app:v1", ("localhost:5000", "app:v1")),
        ("localhost/app", ("localhost", "app")),
        ("org/app", ("", "org/app")),
        ("golang:1.22", ("", "golang:1.22")),
        ("quay.io", ("", "quay.io")),
    ],
)
def test_split_host_follows_docker(name, parts):
    assert split_host(name) == parts


@pytest.mark.parametrize(
    ("value", "host"),
    [
        ("https://quay.io/v2/", "quay.io"),
        ("quay.io", "quay.io"),
        ("http://127.0.0.1:5000", "127.0.0.1:5000"),
        ("  quay.io:8443/v2 ", "quay.io:8443"),
        ("", ""),
    ],
)
def test_registry_option_is_a_url_or_host(value, host):
    assert registry_host(value) == host


@pytest.mark.parametrize(
    ("name", "registry", "qualified"),
    [
        ("org/app", "https://quay.io/v2/", "quay.io/org/app"),
        ("golang:1.22", "127.0.0.1:5000", "127.0.0.1:5000/golang:1.22"),
        ("ghcr.io/org/app", "quay.io", "ghcr.io/org/app"),
        ("org/app", "", "org/app"),
        ("org/app", "https://index.docker.io/v1/", "org/app"),
        ("golang", "registry.hub.docker.com", "golang"),
        ("org/app", "docker.io", "org/app"),
    ],
)
def test_registry_option_prefixes_names_without_a_host(name, registry, qualified):
    assert qualify(name, registry) == qualified


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("quay.io/org/App", "lowercase"),
        ("quay.io/org/app:v1", "use --tag v1"),
        ("quay.io/org/app@sha256:abcd", "digests are not allowed"),
        ("quay.io/org//app", "invalid path component ''"),
        ("quay.io/org/-app", "invalid path component '-app'"),
        ("bad_host:5000/app", "invalid registry host"),
        ("quay.io/" + "a" * 256, "longer than 255"),
    ],
)
def test_bad_repository_names_say_what_is_wrong(text, message):
    with pytest.raises(InvalidReferenceError, match=message.replace("(", r"\(")) as caught:
        parse_repository(text)
    assert text[:40] in str(caught.value) or not text


@given(
    st.from_regex(
        r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}(?:/[a-z0-9]{1,8}){0,2}", fullmatch=True
    )
)
def test_valid_paths_on_a_host_round_trip(path):
    ref = parse_repository(f"registry.example:443/{path}")
    assert str(ref) == f"registry.example:443/{path}"


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "0", "a_b-c.d", "A" * 128])
def test_valid_tags(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".hidden", "-x", "a" * 129, "a/b", "a:b", "ünï"])
def test_invalid_tags(tag):
    with pytest.raises(InvalidReferenceError, match=r"tag .* is invalid"):
        validate_tag(tag)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.8.9.1", True),
        ("localhost:80", True),
        ("[::1]:5000", True),
        ("quay.io", False),
        ("10.0.0.1:5000", False),
        ("127.example.com", False),
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback
