"""Parsing ``host[:port]/path`` repository names and tags the way Docker does.

A first component with a dot, a colon or equal to ``localhost`` is a
registry host; anything else is Docker Hub, where one-component names live
under ``library/``. These host rules live here only: the box puller and the
push steps call :func:`split_host`, :func:`registry_host` and :func:`qualify`
instead of keeping copies that drift (one knew ``registry.hub.docker.com``,
another did not). Tags and digests are not part of a *repository*: they are
given separately (``--tag``), so ``quay.io/org/app:v1`` is refused with a hint
instead of silently becoming a different repository name.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from scratchd.errors import InvalidReferenceError
from scratchd.models import ImageRef

DOCKER_HUB = "registry-1.docker.io"
#: Every name Docker Hub goes by; all of them mean :data:`DOCKER_HUB`.
HUB_ALIASES = frozenset(
    {"docker.io", "index.docker.io", "registry.hub.docker.com", "registry-1.docker.io"}
)

# distribution/reference: path components are lowercase alphanumerics joined
# by single separators ("." "_" "__" or runs of "-").
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_MAX_NAME = 255


def parse_repository(text: str) -> ImageRef:
    """``quay.io/org/app`` → ImageRef("quay.io", "org/app"); errors name the input."""
    raw = text.strip()
    if not raw:
        raise InvalidReferenceError("repository name is empty")
    if "@" in raw:
        raise InvalidReferenceError(
            f"repository {raw!r}: digests are not allowed here, name the repository"
        )
    host, path = split_host(raw)
    if host:
        if not _HOST.fullmatch(host):
            raise InvalidReferenceError(f"repository {raw!r}: invalid registry host {host!r}")
    else:
        host = DOCKER_HUB
    if host in HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    _check_path(raw, path)
    return ImageRef(host, path)


def split_host(name: str) -> tuple[str, str]:
    """``quay.io/org/app`` → ``("quay.io", "org/app")``; ``org/app`` → ``("", "org/app")``.

    Docker's rule: the first component is a host only when a path follows and
    it holds a dot or a port colon, or is ``localhost``. A tag on the name
    (``golang:1.22``) is left alone.
    """
    first, sep, rest = name.partition("/")
    if sep and rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest
    return "", name


def registry_host(value: str) -> str:
    """wercker's ``registry`` option is a URL or a host: ``https://quay.io/v2/`` → ``quay.io``."""
    value = value.strip()
    if not value:
        return ""
    return urlsplit(value if "://" in value else f"//{value}").netloc


def is_docker_hub(host: str) -> bool:
    return host in HUB_ALIASES


def qualify(name: str, registry: str) -> str:
    """``name`` prefixed with the ``registry`` option's host, unless it names a host
    already or the registry is Docker Hub (whose names docker leaves bare)."""
    host = registry_host(registry)
    if not host or is_docker_hub(host) or split_host(name)[0]:
        return name
    return f"{host}/{name}"


def _check_path(raw: str, path: str) -> None:
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        raise InvalidReferenceError(
            f"repository {raw!r}: a tag is not part of the repository; "
            f"use --tag {last.split(':')[1]}"
        )
    if path != path.lower():
        raise InvalidReferenceError(f"repository {raw!r}: repository names must be lowercase")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise InvalidReferenceError(
                f"repository {raw!r}: invalid path component {component!r} "
                "(lowercase letters, digits and single . _ - separators)"
            )
    if len(path) > _MAX_NAME:
        raise InvalidReferenceError(f"repository {raw!r}: name longer than {_MAX_NAME} characters")


def validate_tag(tag: str) -> str:
    """Return ``tag`` if Docker accepts it (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``)."""
    if not _TAG.fullmatch(tag) or not tag.isascii():
        raise InvalidReferenceError(
            f"tag {tag!r} is invalid: up to 128 of letters, digits, _ . - "
            "and not starting with . or -"
        )
    return tag


def is_loopback(host: str) -> bool:
    """Whether ``host[:port]`` names this machine (plain HTTP is allowed there)."""
    name = host[1 : host.find("]")] if host.startswith("[") else host.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a DNS name, even "127.example.com"
