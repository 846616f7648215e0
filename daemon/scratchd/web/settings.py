"""What ``scratchd web`` is told by its command line and the daemon's config.

The web package does not read ``scratchd.toml`` itself (it may import only
errors, models and the store): ``cli/web.py`` loads the config and hands
over the few facts the pages need, so the repository list and executor
names are the daemon's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BIND = "127.0.0.1:8470"


@dataclass(frozen=True)
class RepoSite:
    """A configured repository: pre-created metrics, a dashboard tile even with no builds."""

    name: str
    executor: str = "host"
    pipelines: tuple[str, ...] = ("build",)


@dataclass(frozen=True)
class WebSettings:
    state_dir: Path
    repos: tuple[RepoSite, ...] = ()
    capacity: int = 2  # max_concurrent_builds: the daemon's build slots
    token: str | None = field(default=None, repr=False)  # bearer token for /api and /metrics
    keepalive: float = 15.0  # seconds between SSE keep-alive comments
    poll: float = 0.25  # seconds between looks at the database / log for an SSE stream
    tail_lines: int = 2000  # log lines a build page shows before "load earlier"

    def repo(self, name: str) -> RepoSite | None:
        return next((r for r in self.repos if r.name == name), None)

    def executor_of(self, repo: str) -> str:
        site = self.repo(repo)
        return site.executor if site else "unknown"
