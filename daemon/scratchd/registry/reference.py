"""Parsing ``host[:port]/path`` repository names and tags the way Docker does.

A first component with a dot, a colon or equal to ``localhost`` is a
registry host; anything else is Docker Hub, where one-component names live
under ``library/``. Tags and digests are not part of a *repository*: they are
given separately (``--tag``), so ``quay.io/org/app:v1`` is refused with a hint
instead of silently becoming a different repository name.
"""

from __future__ import annotations

import ipaddress
import re

from scratchd.errors import UsageError
from scratchd.models import ImageRef

DOCKER_HUB = "registry-1.docker.io"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

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
        raise UsageError("repository name is empty")
    if "@" in raw:
        raise UsageError(f"repository {raw!r}: digests are not allowed here, name the repository")
    first, _, rest = raw.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, path = first, rest
        if not _HOST.fullmatch(host):
            raise UsageError(f"repository {raw!r}: invalid registry host {host!r}")
    else:
        host, path = DOCKER_HUB, raw
    if host in _HUB_ALIASES:
        host = DOCKER_HUB
        if "/" not in path:
            path = f"library/{path}"
    _check_path(raw, path)
    return ImageRef(host, path)


def _check_path(raw: str, path: str) -> None:
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        raise UsageError(
            f"repository {raw!r}: a tag is not part of the repository; "
            f"use --tag {last.split(':')[1]}"
        )
    if path != path.lower():
        raise UsageError(f"repository {raw!r}: repository names must be lowercase")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise UsageError(
                f"repository {raw!r}: invalid path component {component!r} "
                "(lowercase letters, digits and single . _ - separators)"
            )
    if len(path) > _MAX_NAME:
        raise UsageError(f"repository {raw!r}: name longer than {_MAX_NAME} characters")


def validate_tag(tag: str) -> str:
    """Return ``tag`` if Docker accepts it (``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``)."""
    if not _TAG.fullmatch(tag) or not tag.isascii():
        raise UsageError(
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
