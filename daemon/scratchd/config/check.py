"""Check a loaded config against the machine: paths, repositories, permissions.

``load_config`` already guarantees the file is well-formed; this looks at
what the file points to, which can change after the daemon started, so it is
a separate step (``scratchd check-config``). Problems are returned, not
raised, so one run reports all of them.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from scratchd.config.engines import EngineConfig, unplaceable
from scratchd.config.lines import KeyPath, dotted
from scratchd.config.model import Config, RepoConfig
from scratchd.errors import CredentialError

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Problem:
    """One finding; ``str()`` is ``file:line: key: message``."""

    message: str
    key: str = ""
    line: int | None = None
    file: str = ""
    severity: str = ERROR

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p)
        parts = [p for p in (where, self.key, f"{self.severity}: {self.message}") if p]
        return ": ".join(parts)


def check_config(config: Config, environ: dict[str, str] | None = None) -> list[Problem]:
    """Every problem found with what ``config`` refers to (empty when all is well)."""
    env = dict(os.environ if environ is None else environ)
    checker = _Checker(config)
    checker.state_dir()
    for host, registry in config.registries.items():
        where = ("registry", host)
        if registry.password_file is not None:
            checker.secret_file((*where, "password_file"), registry.password_file)
        if registry.password_env and registry.password_env not in env:
            checker.add(
                (*where, "password_env"),
                f"${registry.password_env} is not set here (it must be set in the service's "
                "environment)",
                WARNING,
            )
        if registry.password_credential:
            checker.credential((*where, "password_credential"), registry.password_credential, env)
        checker.password(where, registry, env)
    for index, engine in enumerate(config.engines):
        checker.engine(index, engine)
    for index, repo in enumerate(config.repos):
        checker.repo(index, repo)
    from scratchd.config.notify_check import check_sinks

    check_sinks(checker, config, env)
    return checker.problems


class _Checker:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.problems: list[Problem] = []

    def add(self, path: KeyPath, message: str, severity: str = ERROR) -> None:
        self.problems.append(
            Problem(
                message, dotted(path), self.config.line_of(path), str(self.config.path), severity
            )
        )

    def state_dir(self) -> None:
        path = self.config.daemon.state_dir
        key = ("daemon", "state_dir")
        if path.exists():
            if not path.is_dir():
                self.add(key, f"{path} is not a directory")
            elif not os.access(path, os.W_OK | os.X_OK):
                self.add(key, f"{path} is not writable by this user")
            return
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is None or not os.access(parent, os.W_OK | os.X_OK):
            self.add(key, f"{path} does not exist and cannot be created here")
        else:
            self.add(key, f"{path} does not exist yet (the daemon will create it)", WARNING)

    def secret_file(self, key: KeyPath, path: Path) -> None:
        try:
            mode = path.stat().st_mode
        except OSError as exc:
            self.add(key, f"cannot read {path}: {exc.strerror}")
            return
        if not stat.S_ISREG(mode):
            self.add(key, f"{path} is not a regular file")
        elif not os.access(path, os.R_OK):
            self.add(key, f"{path} is not readable by this user")
        elif mode & stat.S_IROTH:
            self.add(key, f"{path} is world-readable (mode {stat.S_IMODE(mode):o}); chmod o-r")

    def credential(self, key: KeyPath, name: str, env: dict[str, str]) -> None:
        """systemd sets $CREDENTIALS_DIRECTORY for the service only; elsewhere just warn."""
        directory = env.get("CREDENTIALS_DIRECTORY")
        if not directory:
            self.add(
                key,
                "$CREDENTIALS_DIRECTORY is not set here (LoadCredential= sets it for the service)",
                WARNING,
            )
        elif not os.access(Path(directory) / name, os.R_OK):
            self.add(key, f"credential {name!r} is not readable in {directory}")

    def password(self, where: KeyPath, registry, env: dict[str, str]) -> None:
        """Read a password the checks above found readable: is it long enough to mask?"""
        sources = ("password_file", "password_env", "password_credential")
        key = next(((*where, s) for s in sources if getattr(registry, s)), where)
        if any(p.key.startswith(dotted(where)) for p in self.problems):
            return  # unreadable or unset: already reported
        try:
            registry.password(env)
        except CredentialError as exc:
            self.add(key, str(exc))

    def engine(self, index: int, engine: EngineConfig) -> None:
        """TLS files readable (the key like a secret); reachability is the CLI's probe."""
        where: KeyPath = ("engine", index, "tls")
        if engine.tls is not None:
            for name in ("ca", "cert"):
                path = getattr(engine.tls, name)
                if not os.access(path, os.R_OK) or not path.is_file():
                    self.add(where, f"engine {engine.name}: tls {name} {path} is not readable")
            self.secret_file(where, engine.tls.key)
        if engine.plaintext and engine.insecure:
            self.add(
                ("engine", index, "insecure"),
                f"engine {engine.name}: plain tcp:// without TLS (insecure = true)",
                WARNING,
            )

    def repo(self, index: int, repo: RepoConfig) -> None:
        where: KeyPath = ("repo", index)
        why = unplaceable(repo.labels, self.config.engines)
        if why is not None:
            self.add((*where, "labels"), f"repository {repo.name} can never be placed: {why}")
        if repo.secrets_file is not None:
            self.secret_file((*where, "secrets_file"), repo.secrets_file)
        if not repo.path.exists():
            self.add((*where, "path"), f"{repo.path} does not exist")
            return
        import pygit2

        try:
            git = pygit2.Repository(str(repo.path))
        except (pygit2.GitError, KeyError, OSError) as exc:
            self.add((*where, "path"), f"{repo.path} is not a readable git repository ({exc})")
            return
        self._watched_refs(where, repo, git)

    def _watched_refs(self, where: KeyPath, repo: RepoConfig, git) -> None:
        """Warn when nothing matches yet, or the pipeline file is missing at a tip."""
        watched = [r for r in git.references if repo.watches_ref(r)]
        if not watched:
            self.add(
                (*where, "branches"),
                f"no branch of {repo.path} matches {', '.join(repo.branches) or '(none)'} yet",
                WARNING,
            )
            return
        for ref in watched[:20]:
            commit = git.references[ref].peel(None)
            tree = getattr(commit, "tree", None)
            if tree is not None and repo.pipeline_file not in tree:
                self.add(
                    (*where, "pipeline_file"),
                    f"{repo.pipeline_file} is missing at the tip of {ref}",
                    WARNING,
                )
