"""wercker.yml ``services``: containers next to the pipeline container, found by name.

Each service runs on the pipeline's own user-defined network with the
service name as its network alias, so ``redis:6379`` works from a step.
Legacy Docker links used to hand the linking container a set of variables
describing the service, and wercker kept producing the same set when it
moved from links to networks; build scripts still read them, so they are
computed here the same way (see :func:`link_env`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from scratchd.image.options import parse_command
from scratchd.pipeline.buildplan import Box


def service_alias(box: Box) -> str:
    """The host name of a service: its ``name``, else the image's last path part without tag.

    ``mongo:3.2`` → ``mongo``; ``quay.io/org/postgres`` → ``postgres``.
    """
    if box.name:
        return box.name
    last = box.id.rsplit("/", 1)[-1]
    return re.split(r"[:@]", last, maxsplit=1)[0]


def exposed_ports(box: Box) -> list[tuple[int, str]]:
    """The box's ``ports`` as (port, protocol); ``"8080:80/udp"`` exposes the container's 80."""
    out = []
    for spec in getattr(box, "ports", ()) or ():
        port, _, proto = str(spec).strip().rpartition(":")[2].partition("/")
        if port.isdigit():
            out.append((int(port), proto or "tcp"))
    return out


def command_args(text: str, *, what: str = "box cmd") -> list[str] | None:
    """A box ``cmd``/``entrypoint`` as argv, or None to keep the image's.

    The same rule as the push steps' ``cmd`` (shell-split, or a JSON array),
    and a bad value is an error naming the option, not a stray ValueError.
    """
    argv = parse_command(text, what=what)
    return None if argv is None else list(argv)


def link_env(
    alias: str,
    container_name: str,
    ip: str,
    ports: Iterable[str],
    env: Iterable[str],
) -> dict[str, str]:
    """The variables a Docker link to ``alias`` defined (and wercker kept defining).

    ``ports`` are the service's exposed ports (``"6379/tcp"``), ``env`` its
    ``K=V`` environment. For ``redis`` exposing 6379 this gives
    ``REDIS_PORT=tcp://IP:6379``, ``REDIS_PORT_6379_TCP=tcp://IP:6379``,
    ``REDIS_PORT_6379_TCP_ADDR``, ``_PORT``, ``_PROTO``, ``REDIS_NAME`` and
    ``REDIS_ENV_<K>`` for every variable of the service.
    """
    name = alias.replace("-", "_").replace(".", "_").upper()
    out = {f"{name}_NAME": f"/{container_name}/{alias}"}
    parsed = sorted(_split_port(p) for p in ports)
    for port, proto in parsed:
        prefix = f"{name}_PORT_{port}_{proto.upper()}"
        out[prefix] = f"{proto}://{ip}:{port}"
        out[f"{prefix}_ADDR"] = ip
        out[f"{prefix}_PORT"] = str(port)
        out[f"{prefix}_PROTO"] = proto
    if parsed:
        port, proto = parsed[0]  # the lowest port, as Docker chose it
        out[f"{name}_PORT"] = f"{proto}://{ip}:{port}"
    for item in env:
        key, _, value = item.partition("=")
        out[f"{name}_ENV_{key}"] = value
    return out


def service_env(inspected: Mapping, network: str, alias: str, container_name: str) -> dict:
    """:func:`link_env` from a service container's ``docker inspect`` document."""
    networks = inspected.get("NetworkSettings", {}).get("Networks", {}) or {}
    ip = (networks.get(network) or {}).get("IPAddress", "")
    config = inspected.get("Config", {}) or {}
    ports = (config.get("ExposedPorts") or {}).keys()
    return link_env(alias, container_name, ip, ports, config.get("Env") or ())


def _split_port(spec: str) -> tuple[int, str]:
    port, _, proto = spec.partition("/")
    return int(port), proto or "tcp"
