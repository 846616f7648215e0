"""The ``[notify]`` table and each repository's ``[repo.notify.NAME]`` sinks.

A sink is where events go (``webhook``, ``apprise``, ``exec``) and which
events it wants (``on``). Global sinks hear every repository (or those in
their ``repos`` list); a repository's own sinks hear only it. Sink names are
unique in the file, because ``scratchd notify test --sink NAME`` and the
outbox's deliveries refer to them by name.

Secrets (the webhook signing secret, apprise URLs with tokens in them) are
:class:`~scratchd.models.Secret` values, or are read only when
:meth:`SinkConfig.secret` is called, so a config object never prints one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from scratchd.errors import CredentialError
from scratchd.models import Secret

if TYPE_CHECKING:
    from scratchd.config.load import _Table

SINK_TYPES = ("apprise", "exec", "webhook")
EVENTS = ("queued", "started", "finished", "broken", "fixed")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_HTTP_URL = re.compile(r"https?://[^/\s:@]+(:\d+)?(/\S*)?")
_ANY_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S*")
_SINK_KEYS = (
    "type",
    "on",
    "repos",
    "url",
    "url_file",
    "secret_file",
    "secret_credential",
    "command",
    "timeout",
)


@dataclass(frozen=True)
class SinkConfig:
    """One sink. ``where`` is its key path in the file (for check-config lines)."""

    name: str
    type: str
    on: tuple[str, ...] = EVENTS
    repos: tuple[str, ...] = ()  # empty: every repository
    # Not compared: equality must not depend on how a Secret wrapper compares.
    url: Secret | None = field(default=None, compare=False)
    url_file: Path | None = None
    secret_file: Path | None = None
    secret_credential: str = ""
    command: tuple[str, ...] = ()
    timeout: float = 10.0
    where: tuple = field(default=(), compare=False)

    def wants(self, event_type: str, repo: str) -> bool:
        """``event_type`` is ``build.finished`` or ``finished``."""
        short = event_type.removeprefix("build.")
        return short in self.on and (not self.repos or repo in self.repos)

    def target(self) -> Secret:
        """The URL, read now (``url_file`` may be rotated without a reload)."""
        if self.url is not None:
            return self.url
        if self.url_file is not None:
            return Secret(_read(self.url_file, self.name, "URL file"))
        raise CredentialError(f"sink {self.name}: no url configured")

    def secret(self, environ: Mapping[str, str] | None = None) -> Secret | None:
        """The webhook signing secret, read now; ``None`` when unsigned."""
        env = os.environ if environ is None else environ
        if self.secret_file is not None:
            return Secret(_read(self.secret_file, self.name, "secret file"))
        if self.secret_credential:
            directory = env.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise CredentialError(
                    f"sink {self.name}: credential {self.secret_credential!r} needs "
                    "$CREDENTIALS_DIRECTORY (systemd LoadCredential=)"
                )
            path = Path(directory) / self.secret_credential
            return Secret(_read(path, self.name, "credential"))
        return None


@dataclass(frozen=True)
class NotifyConfig:
    """The ``[notify]`` table plus every sink of the file."""

    web_url: str = ""  # base of build links: {web_url}/builds/{id}
    retry_delay: float = 2.0  # first backoff; doubles each attempt
    retry_max_delay: float = 300.0
    give_up_after: float = 6 * 3600.0  # after the event was written
    sinks: tuple[SinkConfig, ...] = ()

    def sink(self, name: str) -> SinkConfig | None:
        return next((s for s in self.sinks if s.name == name), None)

    def sinks_for(self, event_type: str, repo: str) -> list[str]:
        return [s.name for s in self.sinks if s.wants(event_type, repo)]


def parse_notify(table: _Table, repo_tables: Sequence[tuple[str, _Table]]) -> NotifyConfig:
    """``table`` is the loader's ``[notify]`` table; ``repo_tables`` (name, repo.notify)."""
    d = NotifyConfig()
    sinks = [_sink(name, table.table(("sink", name)), ()) for name in table.table("sink").data]
    for repo, t in repo_tables:
        sinks += [_sink(name, t.table(name), (repo,)) for name in t.data]
    config = NotifyConfig(
        web_url=table.string("web_url", d.web_url).rstrip("/"),
        retry_delay=table.duration("retry_delay", d.retry_delay, positive=True),
        retry_max_delay=table.duration("retry_max_delay", d.retry_max_delay, positive=True),
        give_up_after=table.duration("give_up_after", d.give_up_after, positive=True),
        sinks=tuple(sinks),
    )
    if config.web_url and not _HTTP_URL.fullmatch(config.web_url):
        table.fail("web_url", f"not an http(s) URL: {config.web_url!r}")
    table.finish(["web_url", "retry_delay", "retry_max_delay", "give_up_after", "sink"])
    _unique(sinks, table)
    return config


def _sink(name: str, t, repos: tuple[str, ...]) -> SinkConfig:
    if not _NAME.fullmatch(name):
        t.fail(None, f"invalid sink name {name!r} (allowed: {_NAME.pattern})")
    kind = t.choice("type", None, SINK_TYPES)
    if kind is None:
        t.fail("type", f"required key is missing (one of {', '.join(SINK_TYPES)})")
    on = t.strings("on", EVENTS, nonempty=True)
    for event in on:
        if event.removeprefix("build.") not in EVENTS:
            t.fail("on", f"unknown event {event!r} (known: {', '.join(EVENTS)})")
    url = t.string("url", None) if "url" in t else None
    sink = SinkConfig(
        name=name,
        type=kind,
        on=tuple(dict.fromkeys(e.removeprefix("build.") for e in on)),
        repos=repos or t.strings("repos", ()),
        url=Secret(url) if url is not None else None,
        url_file=t.path("url_file", None),
        secret_file=t.path("secret_file", None),
        secret_credential=t.string("secret_credential", ""),
        command=t.strings("command", ()),
        timeout=t.duration("timeout", 10.0, positive=True),
        where=t.where,
    )
    _shape(sink, t, repos)
    return sink


def _shape(sink: SinkConfig, t, own_repo: tuple[str, ...]) -> None:
    """Which keys each type needs or refuses, and URLs that cannot work."""
    allowed = {
        "webhook": {"url", "url_file", "secret_file", "secret_credential"},
        "apprise": {"url", "url_file"},
        "exec": {"command"},
    }[sink.type]
    common = {"type", "on", "timeout"} | (set() if own_repo else {"repos"})
    t.finish([k for k in _SINK_KEYS if k in allowed | common])
    if sink.type == "exec" and not sink.command:
        t.fail("command", "an exec sink needs command = [PROGRAM, ARGS...]")
    if sink.type != "exec" and (sink.url is None) == (sink.url_file is None):
        t.fail("url", "set exactly one of url, url_file")
    if sink.secret_file is not None and sink.secret_credential:
        t.fail("secret_credential", "set only one of secret_file, secret_credential")
    if "/" in sink.secret_credential:
        t.fail("secret_credential", "a credential name cannot contain '/'")
    if sink.url is not None:
        pattern = _HTTP_URL if sink.type == "webhook" else _ANY_URL
        if not pattern.fullmatch(sink.url.reveal()):
            what = "an http(s) URL" if sink.type == "webhook" else "a URL such as mailto://..."
            t.fail("url", f"not {what}")  # the value may hold a token: never echoed


def _unique(sinks: list[SinkConfig], table) -> None:
    seen: dict[str, SinkConfig] = {}
    for sink in sinks:
        if sink.name in seen:
            line = table.lines.line(seen[sink.name].where)
            raise_at = table.child(sink.where)
            raise_at.fail(None, f"duplicate sink name {sink.name!r} (first used on line {line})")
        seen[sink.name] = sink


def _read(path: Path, sink: str, what: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise CredentialError(f"sink {sink}: cannot read {what} {path}: {exc.strerror}") from None
