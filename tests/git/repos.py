"""Real git repositories for tests, driven with the ``git`` command line.

Tests make commits and pushes the way users do (``git commit``, ``git push``)
so the watcher sees the same file-system traffic as in production, and
scratchd's pygit2 code is judged against an implementation it did not write.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
}


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd`` and return its stdout, stripped."""
    env = {**os.environ, **GIT_ENV}
    out = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


class WorkRepo:
    """A non-bare repository with helpers for commits, branches and pushes."""

    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        git(path, "init", "-q", "-b", branch)
        self._n = 0

    def commit(self, message: str = "", files: dict[str, str] | None = None) -> str:
        """Write ``files`` (default: a counter file), commit them, return the new sha."""
        self._n += 1
        files = files or {"counter.txt": f"{self._n}\n"}
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            if name.endswith(".sh"):
                target.chmod(0o755)
        git(self.path, "add", "-A")
        # The repository's name in the message: two repos never share a sha by accident.
        git(self.path, "commit", "-q", "-m", message or f"{self.path.name} commit {self._n}")
        return self.head()

    def head(self, rev: str = "HEAD") -> str:
        return git(self.path, "rev-parse", rev)

    def branch(self, name: str, start: str = "HEAD") -> None:
        git(self.path, "branch", name, start)

    def switch(self, name: str) -> None:
        git(self.path, "checkout", "-q", name)

    def push(self, remote: str, *refspecs: str, force: bool = False) -> None:
        git(self.path, "push", "-q", *(["--force"] if force else []), remote, *refspecs)


def bare_repo(path: Path) -> Path:
    """An empty bare repository, as on a git server."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "--bare", "-b", "main")
    return path
