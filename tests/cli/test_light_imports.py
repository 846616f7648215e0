"""Commands a person types often load only what they use (start-up is their latency).

``scratchd builds`` on a big installation was 0.6-1.0 s of wall time for a
1 ms query, nearly all of it imports. Each case runs the real command in a
fresh interpreter and lists the heavy libraries it loaded.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.state_env import make_env

HEAVY = ("pygit2", "docker", "yaml", "requests", "apprise", "aiohttp", "apscheduler", "watchdog")
#: Standard modules that cost 10-20 ms each and that listing builds never needs.
UNNEEDED = ("socket", "uuid", "difflib")

PROBE = """
import contextlib, io, sys
from scratchd.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    code = main(sys.argv[1:])
print(code, *sorted({m.split('.')[0] for m in sys.modules} & set(HEAVY + UNNEEDED)))
"""


def loaded(*argv: str) -> tuple[int, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\nUNNEEDED = {UNNEEDED!r}\n{PROBE}", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    code, *modules = out.stdout.split()
    return int(code), set(modules)


@pytest.mark.parametrize("extra", [(), ("--repo", "app"), ("--json",)])
def test_builds_loads_no_heavy_library(tmp_path, extra):
    env = make_env(tmp_path)
    env.store().close()
    assert loaded("builds", "--config", str(env.config), *extra) == (0, set())


def test_check_config_without_engines_or_sinks_skips_their_libraries(tmp_path):
    """pygit2 opens the repositories; the docker SDK and apprise have nothing to check."""
    env = make_env(tmp_path)
    code, modules = loaded("check-config", "--config", str(env.config))
    assert code == 0
    assert modules & set(HEAVY) == {"pygit2"}
