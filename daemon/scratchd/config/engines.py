"""``[[engine]]`` blocks: the Docker engines on other hosts that builds may run on.

A remote engine is a root shell on that host for whoever can reach its API,
so the rules are strict: ``tcp://`` needs client TLS (``tls = {ca, cert,
key}``) unless the host is a loopback address or ``insecure = true`` says
the operator knows (the daemon then logs a warning at start). With no
``[[engine]]`` the local engine stays the default and nothing here applies.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from scratchd.config import bounds

if TYPE_CHECKING:
    from scratchd.config.load import _Table

SCHEMES = ("tcp", "unix", "ssh")
# Engine names become journal field values and docker volume/label values.
_ENGINE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/=-]*")


@dataclass(frozen=True)
class EngineTLS:
    """Client TLS files for a ``tcp://`` engine (the engine runs ``--tlsverify``)."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class EngineConfig:
    """One ``[[engine]]`` block."""

    name: str
    url: str
    tls: EngineTLS | None = None
    capacity: int = 1  # pipelines at once
    labels: tuple[str, ...] = ()
    insecure: bool = False  # plain tcp:// to a non-loopback host, on purpose
    ssh_key: Path | None = None  # ssh://: identity file (default: the user's ssh config)
    known_hosts: Path | None = None  # ssh://: known_hosts file (host keys are always checked)

    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def plaintext(self) -> bool:
        """True for ``tcp://`` without TLS (loopback, or ``insecure = true``)."""
        return self.scheme == "tcp" and self.tls is None

    def satisfies(self, required: tuple[str, ...]) -> bool:
        return set(required) <= set(self.labels)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_engine(t: _Table) -> EngineConfig:
    """Validate one ``[[engine]]`` table (see the module docstring for the rules)."""
    url = t.string("url", None)
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        t.fail("url", f"must start with {', '.join(s + '://' for s in SCHEMES)}, got {url!r}")
    if parts.scheme in ("tcp", "ssh") and not parts.hostname:
        t.fail("url", f"{url!r} names no host")
    if parts.scheme == "unix" and not parts.path:
        t.fail("url", f"{url!r} names no socket path")
    if "tls" in t and parts.scheme != "tcp":
        t.fail("tls", f"tls applies to tcp:// engines only, not {parts.scheme}://")
    tls = _tls(t) if "tls" in t else None
    config = EngineConfig(
        name=t.string("name", None, pattern=_ENGINE_NAME),
        url=url,
        tls=tls,
        capacity=t.integer("capacity", 1, low=1, high=bounds.MAX_CONCURRENT_BUILDS),
        labels=t.strings("labels", ()),
        insecure=t.boolean("insecure", False),
        ssh_key=t.path("ssh_key", None),
        known_hosts=t.path("known_hosts", None),
    )
    for key in ("ssh_key", "known_hosts"):
        if key in t and parts.scheme != "ssh":
            t.fail(key, f"{key} applies to ssh:// engines only")
    for label in config.labels:
        if not _LABEL.fullmatch(label):
            t.fail("labels", f"invalid label {label!r} (allowed: {_LABEL.pattern})")
    if config.plaintext and not config.insecure and not is_loopback(parts.hostname or ""):
        t.fail(
            "url",
            f"tcp:// to {parts.hostname} without tls gives anyone on the network root on that "
            "host: set tls = {ca, cert, key}, or insecure = true if you really mean it",
        )
    t.finish(["name", "url", "tls", "capacity", "labels", "insecure", "ssh_key", "known_hosts"])
    return config


def _tls(t: _Table) -> EngineTLS:
    sub = t.table("tls")
    tls = EngineTLS(
        ca=sub.path("ca", None, required=True),
        cert=sub.path("cert", None, required=True),
        key=sub.path("key", None, required=True),
    )
    sub.finish(["ca", "cert", "key"])
    return tls


def unplaceable(required: tuple[str, ...], engines: tuple[EngineConfig, ...]) -> str | None:
    """Why a build needing ``required`` labels can never be placed, or None."""
    if not required:
        return None
    if not engines:
        return f"requires labels {', '.join(required)} but no [[engine]] is configured"
    if any(e.satisfies(required) for e in engines):
        return None
    return f"requires labels {', '.join(required)} and no engine has all of them"
