"""Text → image options, with wercker's ``internal/docker-scratch-push`` semantics.

Shared by ``scratchd bake`` and the pipeline's push steps so that a
``cmd: ./app --port 5000`` in wercker.yml and ``--cmd "./app --port 5000"``
on the command line mean exactly the same thing: :func:`image_spec` is the
one mapping of those options to an :class:`ImageSpec`. Every parser raises a
one-line :class:`~scratchd.errors.ImageOptionError` that names the option it was
given, because the caller may be a YAML key or a command-line flag.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterable
from typing import Any

from scratchd.errors import ImageOptionError
from scratchd.models import ImageSpec, Platform

# GOOS/GOARCH pairs container runtimes know; a typo here would produce an image
# no engine runs, so unknown values are refused instead of passed through.
KNOWN_OS = frozenset({"linux", "windows", "freebsd"})
KNOWN_ARCH = frozenset(
    {"amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le", "loong64"}
)
KNOWN_VARIANTS = {"arm": {"v5", "v6", "v7"}, "arm64": {"v8"}}

# uname -m → (architecture, variant)
_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", ""),
    "arm64": ("arm64", ""),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", ""),
    "i686": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}

_PROTOCOLS = ("tcp", "udp", "sctp")
# The OCI grammar for org.opencontainers.image.ref.name, which also covers
# docker references such as quay.io/org/app:v1.
_REF_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME = re.compile(rf"{_REF_COMPONENT}(?:/{_REF_COMPONENT})*")
# A docker reference as `docker load` accepts it in RepoTags: name[:tag].
_DOCKER_NAME = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOCKER_REF = re.compile(
    rf"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?{_DOCKER_NAME}(?:/{_DOCKER_NAME})*(?::[\w][\w.-]{{0,127}})?"
)


#: The image options, by their wercker.yml names (``scratchd bake`` has a flag for each).
IMAGE_OPTIONS = (
    "cmd",
    "entrypoint",
    "env",
    "ports",
    "labels",
    "volumes",
    "working-dir",
    "user",
    "stopsignal",
)


def image_spec(
    get: Callable[[str], Any], *, what: Callable[[str], str], **fields: Any
) -> ImageSpec:
    """The :class:`ImageSpec` that the image options describe.

    ``get(option)`` gives an option's raw value by its wercker.yml name (text,
    a list of items, or empty when unset); ``what(option)`` is how the caller's
    user spelled it, for error messages (``wercker.yml:7: ... 'ports'`` or
    ``--port``). ``fields`` are the ImageSpec fields that are not options
    (created, revision, source, platform ...).
    """
    return ImageSpec(
        cmd=parse_command(get("cmd"), what=what("cmd")),
        entrypoint=parse_command(get("entrypoint"), what=what("entrypoint")),
        env=parse_env_pairs(get("env") or (), what=what("env")),
        ports=parse_ports(get("ports") or (), what=what("ports")),
        labels=parse_env_pairs(get("labels") or (), what=what("labels")),
        volumes=parse_volumes(get("volumes") or (), what=what("volumes")),
        workdir=parse_absolute(get("working-dir") or "", what=what("working-dir")),
        user=get("user") or "",
        stop_signal=get("stopsignal") or "",
        **fields,
    )


def parse_command(text: str | None, *, what: str = "cmd") -> tuple[str, ...] | None:
    """``cmd``/``entrypoint``: a JSON array, or a string split like a shell would.

    Empty text means "not set" (``None``), which is different from ``[]``.
    """
    if text is None or not text.strip():
        return None
    if text.lstrip().startswith("["):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ImageOptionError(f"{what}: invalid JSON array: {exc.msg}") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ImageOptionError(f"{what}: a JSON value must be an array of strings")
        return tuple(value)
    return tuple(_shell_split(text, what))


def parse_ports(text: str | Iterable[str], *, what: str = "ports") -> tuple[str, ...]:
    """``"5000, 8080/udp"`` → ``("5000/tcp", "8080/udp")``; order kept, duplicates dropped."""
    items = [text] if isinstance(text, str) else list(text)
    ports: list[str] = []
    for item in items:
        for word in re.split(r"[\s,]+", item.strip()):
            if word:
                port = _normalise_port(word, what)
                if port not in ports:
                    ports.append(port)
    return tuple(ports)


def _normalise_port(word: str, what: str) -> str:
    number, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    if not number.isdigit() or not 1 <= int(number) <= 65535:
        raise ImageOptionError(
            f"{what}: invalid port {word!r} (want 1-65535, optionally /tcp or /udp)"
        )
    if proto not in _PROTOCOLS:
        raise ImageOptionError(f"{what}: invalid protocol in {word!r} (want tcp, udp or sctp)")
    return f"{int(number)}/{proto}"


def parse_env_pairs(
    items: str | Iterable[str], *, what: str = "env"
) -> tuple[tuple[str, str], ...]:
    """``K=V`` items (a string is shell-split first, as wercker's ``env`` option is)."""
    words = _shell_split(items, what) if isinstance(items, str) else list(items)
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise ImageOptionError(f"{what}: {word!r} is not KEY=VALUE")
        pairs.append((key, value))
    return tuple(pairs)


def parse_created(text: str, *, what: str = "created") -> int:
    """Seconds since the epoch, from ``1700000000`` or RFC 3339 with a zone."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        from datetime import datetime  # only for RFC 3339 input; keeps start-up lean

        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ImageOptionError(
            f"{what}: {text!r} is neither seconds since the epoch nor an RFC 3339 time"
        ) from None
    if moment.tzinfo is None:
        raise ImageOptionError(f"{what}: {text!r} has no time zone (add Z or +00:00)")
    seconds = int(moment.timestamp())
    if seconds < 0:
        raise ImageOptionError(f"{what}: {text!r} is before 1970")
    return seconds


def parse_platform(text: str, *, what: str = "platform") -> Platform:
    """``linux/amd64``, ``linux/arm64/v8``, ``linux/arm/v7`` → :class:`Platform`."""
    parts = text.strip().split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ImageOptionError(f"{what}: {text!r} is not OS/ARCH[/VARIANT]")
    os_name, arch, variant = parts[0], parts[1], parts[2] if len(parts) == 3 else ""
    if os_name not in KNOWN_OS:
        raise ImageOptionError(f"{what}: unknown OS {os_name!r} in {text!r}")
    if arch not in KNOWN_ARCH:
        raise ImageOptionError(f"{what}: unknown architecture {arch!r} in {text!r}")
    if variant and variant not in KNOWN_VARIANTS.get(arch, ()):
        raise ImageOptionError(f"{what}: unknown variant {variant!r} for {arch} in {text!r}")
    return Platform(os_name, arch, variant)


def host_platform() -> Platform:
    """The platform of this machine: the image runs where it was baked."""
    arch, variant = _MACHINES.get(os.uname().machine.lower(), ("amd64", ""))
    return Platform("linux", arch, variant)


def parse_tags(
    text: str | Iterable[str], *, default: tuple[str, ...] = (), what: str = "tag"
) -> tuple[str, ...]:
    """Tags split on spaces or commas (wercker's ``tag`` option); order kept, no duplicates."""
    items = [text] if isinstance(text, str) else list(text)
    tags: list[str] = []
    for item in items:
        for word in re.split(r"[\s,]+", item.strip()):
            if word and word not in tags:
                if not _REF_NAME.fullmatch(word):
                    raise ImageOptionError(f"{what}: {word!r} is not a valid tag")
                tags.append(word)
    return tuple(tags) or default


def check_docker_reference(ref: str, *, what: str = "tag") -> str:
    """A ``repo[:tag]`` that ``docker load`` accepts as a RepoTag."""
    if not _DOCKER_REF.fullmatch(ref):
        raise ImageOptionError(f"{what}: {ref!r} is not a docker reference such as app:v1")
    return ref


def parse_volumes(text: str | Iterable[str], *, what: str = "volumes") -> tuple[str, ...]:
    """Absolute paths split on spaces or commas."""
    items = [text] if isinstance(text, str) else list(text)
    volumes: list[str] = []
    for item in items:
        for word in re.split(r"[\s,]+", item.strip()):
            if word:
                volumes.append(parse_absolute(word, what=what))
    return tuple(dict.fromkeys(volumes))


def parse_absolute(text: str, *, what: str) -> str:
    """An absolute container path (a working directory or volume)."""
    if text and not text.startswith("/"):
        raise ImageOptionError(f"{what}: {text!r} must be an absolute path")
    return text


def _shell_split(text: str, what: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise ImageOptionError(f"{what}: cannot split {text!r}: {exc}") from None
