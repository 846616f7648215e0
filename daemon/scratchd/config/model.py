"""The validated configuration: frozen dataclasses, nothing else.

``load_config`` (in :mod:`scratchd.config.load`) builds these; every other
module reads them. Defaults live here so the example file, the loader and
the code agree on one value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from scratchd.config import peek
from scratchd.config.lines import KeyLines, KeyPath
from scratchd.config.notify import NotifyConfig
from scratchd.errors import CredentialError
from scratchd.models import MIN_SECRET_LENGTH, Secret
from scratchd.refglob import ref_matches, valid_ref_name

if TYPE_CHECKING:  # the [[engine]] parser loads only for a config that has engines
    from scratchd.config.engines import EngineConfig

DEFAULT_STATE_DIR = Path(peek.DEFAULT_STATE_DIR)
EXECUTORS = ("docker", "host")


@dataclass(frozen=True)
class DaemonConfig:
    """The ``[daemon]`` table."""

    state_dir: Path = DEFAULT_STATE_DIR
    max_concurrent_builds: int = 2
    executor: str = "docker"
    poll_interval: float = 60.0  # seconds; the safety net next to inotify
    shutdown_grace: float = 30.0  # seconds running builds get after SIGTERM
    keep_builds: int = 50  # per repository
    notes: bool = False  # git notes under refs/notes/scratchd on built commits
    retry_limit: int = 3  # attempts of a build that hits infrastructure errors
    retry_delay: float = 30.0  # first backoff; doubles each attempt
    retry_max_delay: float = 600.0  # backoff ceiling
    # The registry client's bounds (a registry, or anything on its path, may be hostile).
    registry_connect_timeout: float = 10.0
    registry_read_timeout: float = 300.0  # any single read or write
    registry_request_timeout: float = 900.0  # a whole request, body included
    registry_max_response: int = 4 << 20  # bytes of a response read into memory
    # Optional caps of one bake (None: no cap); the walk's depth is always capped.
    bake_max_file_size: int | None = None
    bake_max_total_size: int | None = None
    bake_timeout: float | None = None
    sbom: str = "spdx"  # or "none": the SPDX SBOM attached to every image
    provenance: str = "min"  # "none", "min" or "max" (timestamps: digests then vary)
    builder_id: str = ""  # provenance builder id; "" means this host's name
    engine_check_interval: float = 10.0  # how often each [[engine]] is pinged
    build_nice: int = 10  # host steps run this much nicer than the daemon (0: same)
    build_sched_idle: bool = True  # host steps under SCHED_IDLE: any other task preempts them
    build_cpu_shares: int = 512  # docker steps' CPU weight; the engine's default is 1024


@dataclass(frozen=True)
class RegistryConfig:
    """A ``[registry."host"]`` table: who we are at that registry.

    The password is read only when :meth:`password` is called, so it is never
    held in the config object, printed by ``check-config`` or logged.
    """

    host: str
    username: str = ""
    password_file: Path | None = None
    password_env: str = ""
    password_credential: str = ""  # systemd LoadCredential= name
    insecure: bool = False  # plain HTTP (loopback test registries only)

    @property
    def password_source(self) -> str:
        """Where the password comes from, for summaries (never the value)."""
        if self.password_file is not None:
            return f"file {self.password_file}"
        if self.password_env:
            return f"environment variable {self.password_env}"
        if self.password_credential:
            return f"systemd credential {self.password_credential}"
        return "none"

    def password(self, environ: Mapping[str, str] | None = None) -> Secret | None:
        """Read the password now; ``None`` when none is configured.

        A password too short to be masked in build output is refused here.
        """
        password = self._read_password(os.environ if environ is None else environ)
        if password is not None and password.too_short:
            raise CredentialError(
                f"registry {self.host}: the password is shorter than {MIN_SECRET_LENGTH} "
                "characters, too short to be masked in logs"
            )
        return password

    def _read_password(self, env: Mapping[str, str]) -> Secret | None:
        if self.password_file is not None:
            return Secret(_read_secret_file(self.password_file, self.host))
        if self.password_env:
            if self.password_env not in env:
                raise CredentialError(
                    f"registry {self.host}: environment variable {self.password_env} is not set"
                )
            return Secret(env[self.password_env])
        if self.password_credential:
            directory = env.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise CredentialError(
                    f"registry {self.host}: credential {self.password_credential!r} needs "
                    "$CREDENTIALS_DIRECTORY (systemd LoadCredential=)"
                )
            return Secret(_read_secret_file(Path(directory) / self.password_credential, self.host))
        return None


def _read_secret_file(path: Path, host: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise CredentialError(
            f"registry {host}: cannot read password file {path}: {exc.strerror}"
        ) from None


@dataclass(frozen=True)
class RepoConfig:
    """One ``[[repo]]`` block: a repository to watch and how to build it."""

    name: str
    path: Path
    branches: tuple[str, ...] = ("main", "master")
    tags: tuple[str, ...] = ()
    pipelines: tuple[str, ...] = ("build", "deploy")
    #: An old-style deploy target of the file to run (``deploy: {production: [...]}``);
    #: "" runs the deploy pipelines' own ``steps``.
    deploy_target: str = ""
    pipeline_file: str = "wercker.yml"
    secrets_file: Path | None = None
    schedule: str | None = None  # crontab line, checked by apscheduler
    build_every_commit: bool = False
    cancel_superseded: bool = False
    executor: str | None = None  # None: the daemon's executor
    notes: bool | None = None  # None: the daemon's notes setting
    labels: tuple[str, ...] = ()  # engine labels a build of this repository needs

    def watches_ref(self, ref: str) -> bool:
        """Whether a full ref name (``refs/heads/x``, ``refs/tags/v1``) triggers builds."""
        return ref_matches(ref, self.branches, self.tags)


@dataclass(frozen=True)
class Config:
    """A whole scratchd.toml. ``path`` is the file it came from."""

    path: Path
    daemon: DaemonConfig = field(default_factory=DaemonConfig)
    registries: Mapping[str, RegistryConfig] = field(default_factory=lambda: MappingProxyType({}))
    repos: tuple[RepoConfig, ...] = ()
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    engines: tuple[EngineConfig, ...] = ()  # empty: builds run on the local engine
    lines: KeyLines | None = field(default=None, compare=False, repr=False)

    def repo(self, name: str) -> RepoConfig | None:
        return next((r for r in self.repos if r.name == name), None)

    def executor_for(self, repo: RepoConfig) -> str:
        return repo.executor or self.daemon.executor

    def notes_for(self, repo: RepoConfig) -> bool:
        return self.daemon.notes if repo.notes is None else repo.notes

    def line_of(self, path: KeyPath) -> int | None:
        """Source line of a key path such as ``("repo", 0, "path")``."""
        return self.lines.line(path) if self.lines else None


@dataclass(frozen=True)
class RepoChanges:
    """How the repositories of two configs differ (what SIGHUP must do)."""

    added: tuple[RepoConfig, ...] = ()
    removed: tuple[RepoConfig, ...] = ()
    changed: tuple[RepoConfig, ...] = ()  # the new version of each changed repository

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def repo_changes(old: Config, new: Config) -> RepoChanges:
    """Compare by name: a repository whose settings differ is "changed", not removed+added,
    so its running builds and last-seen refs carry over."""
    before = {r.name: r for r in old.repos}
    after = {r.name: r for r in new.repos}
    return RepoChanges(
        added=tuple(r for n, r in after.items() if n not in before),
        removed=tuple(r for n, r in before.items() if n not in after),
        changed=tuple(r for n, r in after.items() if n in before and before[n] != r),
    )


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` can never match a valid ref name, or ``None`` when it is fine."""
    if not pattern:
        return "empty pattern"
    sample = re.sub(r"\[[^\]]*\]", "x", pattern).replace("*", "x").replace("?", "x")
    if not valid_ref_name(f"refs/heads/{sample}"):
        return f"{pattern!r} can never match a git ref name (see git check-ref-format)"
    return None
