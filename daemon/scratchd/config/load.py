"""scratchd.toml → :class:`Config`, with errors that name file, key and line.

Each table is read through a :class:`_Table` that knows its key path, so a
wrong type, a bad value or an unknown key (with a did-you-mean) is reported
as ``/etc/scratchd/scratchd.toml:12: repo[2].branches: ...``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NoReturn, overload

from scratchd.config import bounds, peek
from scratchd.config.durations import parse_duration
from scratchd.config.lines import KeyLines, KeyPath, dotted
from scratchd.config.model import (
    EXECUTORS,
    Config,
    DaemonConfig,
    RegistryConfig,
    RepoConfig,
    glob_problem,
)
from scratchd.config.notify import parse_notify
from scratchd.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(peek.DEFAULT_CONFIG_PATH)
TOP_LEVEL = ("daemon", "notify", "registry", "repo", "engine")
# Repository names become directory names under state_dir and journal field values.
_REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_config_path() -> Path:
    """``$SCRATCHD_CONFIG`` if set, else ``/etc/scratchd/scratchd.toml``."""
    return Path(peek.default_config_file())


def load_config(path: Path) -> Config:
    """Read and validate ``path``; raises :class:`ConfigError` on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", path=str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("config file is not UTF-8 text", path=str(path)) from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate TOML ``text`` as if read from ``path`` (relative paths resolve next to it)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(exc, path) from None
    lines = KeyLines(text)
    root = _Table(data, (), path, lines)
    daemon = _daemon(root.table("daemon"))
    registries = {
        host: _registry(host, root.table(("registry", host)))
        for host in root.table("registry").data
    }
    repo_tables = root.table_list("repo")
    repos = tuple(_repo(t) for t in repo_tables)
    own_sinks = [(r.name, t.table("notify")) for r, t in zip(repos, repo_tables, strict=True)]
    notify = parse_notify(root.table("notify"), own_sinks)
    engines = _engines(root.table_list("engine"))
    root.finish(TOP_LEVEL)
    _no_duplicates(repos, root)
    _no_duplicates(engines, root, "engine")
    return Config(
        path=path,
        daemon=daemon,
        registries=MappingProxyType(registries),
        repos=repos,
        notify=notify,
        engines=engines,
        lines=lines,
    )


def _syntax_error(exc: tomllib.TOMLDecodeError, path: Path) -> ConfigError:
    message = str(exc)
    match = re.search(r"\(at line (\d+), column (\d+)\)$", message)
    if match is None:
        return ConfigError(f"invalid TOML: {message}", path=str(path))
    reason = message[: match.start()].strip()
    return ConfigError(
        f"invalid TOML: {reason} (column {match.group(2)})",
        path=str(path),
        line=int(match.group(1)),
    )


def _daemon(t: _Table) -> DaemonConfig:
    d = DaemonConfig()
    config = DaemonConfig(
        state_dir=t.path("state_dir", d.state_dir),
        max_concurrent_builds=t.integer(
            "max_concurrent_builds", d.max_concurrent_builds, 1, bounds.MAX_CONCURRENT_BUILDS
        ),
        executor=t.choice("executor", d.executor, EXECUTORS),
        poll_interval=t.duration("poll_interval", d.poll_interval, positive=True),
        shutdown_grace=t.duration("shutdown_grace", d.shutdown_grace),
        keep_builds=t.integer("keep_builds", d.keep_builds, 1, bounds.MAX_KEEP_BUILDS),
        notes=t.boolean("notes", d.notes),
        retry_limit=t.integer("retry_limit", d.retry_limit, 1, bounds.MAX_RETRY_LIMIT),
        retry_delay=t.duration("retry_delay", d.retry_delay),
        retry_max_delay=t.duration("retry_max_delay", d.retry_max_delay),
        registry_connect_timeout=t.duration(
            "registry_connect_timeout", d.registry_connect_timeout, positive=True
        ),
        registry_read_timeout=t.duration(
            "registry_read_timeout", d.registry_read_timeout, positive=True
        ),
        registry_request_timeout=t.duration(
            "registry_request_timeout", d.registry_request_timeout, positive=True
        ),
        registry_max_response=t.size("registry_max_response", d.registry_max_response, 1),
        bake_max_file_size=t.size("bake_max_file_size", None, 1),
        bake_max_total_size=t.size("bake_max_total_size", None, 1),
        bake_timeout=t.duration("bake_timeout", None, positive=True),
        sbom=t.choice("sbom", d.sbom, ("spdx", "none")),
        provenance=t.choice("provenance", d.provenance, ("none", "min", "max")),
        builder_id=t.string("builder_id", d.builder_id),
        engine_check_interval=t.duration(
            "engine_check_interval", d.engine_check_interval, positive=True
        ),
        build_nice=t.integer("build_nice", d.build_nice, low=0, high=19),
        build_sched_idle=t.boolean("build_sched_idle", d.build_sched_idle),
        build_cpu_shares=t.integer("build_cpu_shares", d.build_cpu_shares, low=2, high=262144),
    )
    t.finish([f.name for f in DaemonConfig.__dataclass_fields__.values()])
    return config


def _registry(host: str, t: _Table) -> RegistryConfig:
    config = RegistryConfig(
        host=host,
        username=t.string("username", ""),
        password_file=t.path("password_file", None),
        password_env=t.string("password_env", "", pattern=_ENV_NAME),
        password_credential=t.string("password_credential", ""),
        insecure=t.boolean("insecure", False),
    )
    sources = [k for k in ("password_file", "password_env", "password_credential") if k in t]
    if len(sources) > 1:
        t.fail(sources[1], f"set only one of {', '.join(sources)}")
    if sources and not config.username:
        t.fail(sources[0], "a password needs a username")
    if "/" in config.password_credential:
        t.fail("password_credential", "a credential name cannot contain '/'")
    t.finish([f for f in RegistryConfig.__dataclass_fields__ if f != "host"])
    return config


def _repo(t: _Table) -> RepoConfig:
    d = RepoConfig(name="", path=Path())
    config = RepoConfig(
        name=t.string("name", None, pattern=_REPO_NAME),
        path=t.path("path", None, required=True),
        branches=t.globs("branches", d.branches),
        tags=t.globs("tags", d.tags),
        pipelines=t.strings("pipelines", d.pipelines, nonempty=True),
        deploy_target=t.string("deploy_target", d.deploy_target),
        pipeline_file=t.string("pipeline_file", d.pipeline_file),
        secrets_file=t.path("secrets_file", None),
        schedule=t.cron("schedule"),
        build_every_commit=t.boolean("build_every_commit", d.build_every_commit),
        cancel_superseded=t.boolean("cancel_superseded", d.cancel_superseded),
        executor=t.choice("executor", None, EXECUTORS),
        notes=t.boolean("notes", None),
        labels=t.strings("labels", ()),
    )
    t.finish([*RepoConfig.__dataclass_fields__, "notify"])  # notify: parse_notify
    return config


def _engines(tables: list[_Table]) -> tuple:
    """The ``[[engine]]`` blocks; their parser (URLs, addresses) loads only when there are any."""
    if not tables:
        return ()
    from scratchd.config.engines import parse_engine

    return tuple(parse_engine(t) for t in tables)


def _no_duplicates(blocks: tuple[Any, ...], root: _Table, kind: str = "repo") -> None:
    """Two blocks with one name would share their builds, refs and logs (or engine slots)."""
    noun = {"repo": "repository", "engine": "engine"}[kind]
    seen: dict[str, int] = {}
    for index, block in enumerate(blocks):
        if block.name in seen:
            first = seen[block.name]
            line = root.lines.line((kind, first, "name"))
            root.child((kind, index)).fail(
                "name", f"duplicate {noun} name {block.name!r} (first used on line {line})"
            )
        seen[block.name] = index


_MISSING = object()


class _Table:
    """One TOML table plus where it is; typed getters record which keys were read."""

    def __init__(self, data: dict, where: KeyPath, path: Path, lines: KeyLines) -> None:
        self.data, self.where, self.file, self.lines = data, where, path, lines
        self.used: set[str] = set()

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def child(self, where: KeyPath) -> _Table:
        return _Table({}, where, self.file, self.lines)

    # -- errors ------------------------------------------------------------

    def fail(self, key: str | None, message: str) -> NoReturn:
        path = (*self.where, key) if key is not None else self.where
        raise ConfigError(
            message, path=str(self.file), key=dotted(path), line=self.lines.line(path)
        )

    def finish(self, known: list[str] | tuple[str, ...]) -> None:
        """Reject keys nobody read: a typo must not silently become a default."""
        for key in self.data:
            if key not in known:
                import difflib  # only for a mistake: its import costs every load

                close = difflib.get_close_matches(key, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.fail(key, f"unknown key{hint} (known: {', '.join(known)})")

    # -- structure ---------------------------------------------------------

    def table(self, key: str | tuple[str, ...]) -> _Table:
        keys = (key,) if isinstance(key, str) else key
        data: Any = self.data
        for k in keys:
            data = data.get(k, {})
            if not isinstance(data, dict):
                self.fail(".".join(keys), f"expected a table, got {_kind(data)}")
        self.used.add(keys[0])
        return _Table(data, (*self.where, *keys), self.file, self.lines)

    def table_list(self, key: str) -> list[_Table]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.fail(key, f"expected [[{key}]] tables, got {_kind(value)}")
        return [
            _Table(v, (*self.where, key, i), self.file, self.lines) for i, v in enumerate(value)
        ]

    # -- typed values --------------------------------------------------------

    def _get(self, key: str, default: Any, types: tuple[type, ...], what: str) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is None and what.endswith("!"):
                self.fail(key, "required key is missing")
            return default
        bad_bool = isinstance(value, bool) and bool not in types
        if bad_bool or not isinstance(value, types):
            self.fail(key, f"expected {what.rstrip('!')}, got {_kind(value)}")
        return value

    def string(self, key: str, default: str | None, pattern: re.Pattern | None = None) -> str:
        value = self._get(key, default, (str,), "a string" + ("!" if default is None else ""))
        if key in self.data and pattern is not None and not pattern.fullmatch(value):
            self.fail(key, f"invalid value {value!r} (allowed: {pattern.pattern})")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self._get(key, default, (int,), "an integer")
        if value < low:
            self.fail(key, f"must be at least {low}, got {value}")
        if value > high:
            self.fail(key, f"must be at most {high}, got {value}")
        return value

    @overload
    def size(self, key: str, default: int, low: int) -> int: ...
    @overload
    def size(self, key: str, default: None, low: int) -> int | None: ...
    def size(self, key: str, default: int | None, low: int) -> int | None:
        """Bytes (``4194304``) or text with a unit (``"4MiB"``), at most 1 TiB."""
        value = self._get(key, default, (int, str), 'a size such as "4MiB"')
        if value is None:
            return None
        try:
            size = bounds.parse_size(value)
        except ValueError as exc:
            self.fail(key, str(exc))
        if size < low:
            self.fail(key, f"must be at least {low} bytes, got {value!r}")
        if bounds.too_large(size, bounds.MAX_SIZE):
            self.fail(key, f"must be at most 1TiB, got {value!r}")
        return size

    # Overloads: a setting with a default is never None, so its dataclass field needs no check.
    @overload
    def boolean(self, key: str, default: bool) -> bool: ...
    @overload
    def boolean(self, key: str, default: None) -> bool | None: ...
    def boolean(self, key: str, default: bool | None) -> bool | None:
        return self._get(key, default, (bool,), "true or false")

    @overload
    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str: ...
    @overload
    def choice(self, key: str, default: None, choices: tuple[str, ...]) -> str | None: ...
    def choice(self, key: str, default: str | None, choices: tuple[str, ...]) -> str | None:
        value = self._get(key, default, (str,), "a string")
        if value is not None and value not in choices:
            import difflib  # only for a mistake: its import costs every load

            close = difflib.get_close_matches(value, choices, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}{hint}")
        return value

    @overload
    def duration(self, key: str, default: float, positive: bool = False) -> float: ...
    @overload
    def duration(self, key: str, default: None, positive: bool = False) -> float | None: ...
    def duration(self, key: str, default: float | None, positive: bool = False) -> float | None:
        """Seconds, at most a week (:data:`bounds.MAX_DURATION`); ``None`` if absent."""
        value = self._get(key, default, (int, float, str), 'a duration such as "60s"')
        if value is None:
            return None
        try:
            seconds = parse_duration(value)
        except (ValueError, OverflowError) as exc:
            self.fail(key, str(exc))
        if bounds.too_large(seconds, bounds.MAX_DURATION):
            self.fail(key, f'must be at most "7d", got {value!r}')
        if positive and seconds <= 0:
            self.fail(key, "must be greater than zero")
        return seconds

    @overload
    def path(self, key: str, default: Path, required: bool = False) -> Path: ...
    @overload
    def path(self, key: str, default: None, required: Literal[True]) -> Path: ...
    @overload
    def path(self, key: str, default: None, required: bool = False) -> Path | None: ...
    def path(self, key: str, default: Path | None, required: bool = False) -> Path | None:
        """A path; relative ones are taken relative to the config file's directory."""
        value = self._get(key, None, (str,), "a path" + "!" * required)
        if value is None:
            return default
        if not value:
            self.fail(key, "must not be empty")
        p = Path(value).expanduser()
        return p if p.is_absolute() else (self.file.parent / p)

    def strings(self, key: str, default: tuple[str, ...], nonempty: bool = False) -> tuple:
        value = self._get(key, list(default), (list,), "a list of strings")
        if not all(isinstance(v, str) and v for v in value):
            self.fail(key, "every entry must be a non-empty string")
        if nonempty and not value:
            self.fail(key, "must not be empty")
        return tuple(value)

    def globs(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        patterns = self.strings(key, default)
        for pattern in patterns:
            problem = glob_problem(pattern)
            if problem:
                self.fail(key, problem)
        return patterns

    def cron(self, key: str) -> str | None:
        value = self._get(key, None, (str,), "a crontab expression")
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            self.fail(key, f"invalid cron expression {value!r}: {exc}")
        return value


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)
