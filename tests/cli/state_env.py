"""A config, a state dir and a real git repository for the state-command tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from scratchd.cli import main
from scratchd.store import StateDir, Store
from tests.git.repos import WorkRepo


@dataclass
class StateEnv:
    config: Path
    state: StateDir
    repo: WorkRepo

    def store(self) -> Store:
        return Store(self.state.db)

    def cli(self, capsys, *args: str) -> tuple[int, str, str]:
        """Run ``scratchd ARGS --config <this config>`` in-process."""
        command, *rest = args
        code = main([command, "--config", str(self.config), *rest])
        out = capsys.readouterr()
        return code, out.out, out.err


def make_env(tmp_path: Path, repo_extra: str = "") -> StateEnv:
    repo = WorkRepo(tmp_path / "app")
    repo.commit(files={"wercker.yml": "build:\n  steps:\n    - script:\n        code: echo hi\n"})
    config = tmp_path / "scratchd.toml"
    config.write_text(
        f'[daemon]\nstate_dir = "{tmp_path / "state"}"\nexecutor = "host"\n'
        f'[[repo]]\nname = "app"\npath = "{repo.path}"\nbranches = ["main", "feature/*"]\n'
        + repo_extra
    )
    return StateEnv(config, StateDir(tmp_path / "state"), repo)
