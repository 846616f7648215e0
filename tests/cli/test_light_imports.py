"""Commands a person types often load only what they use (start-up is their latency).

``scratchd builds`` on a big installation was 0.6-1.0 s of wall time for a
1 ms query, nearly all of it imports. Each case runs the real command in a
fresh interpreter and lists the heavy libraries it loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from scratchd.cli.builds import ENGINES_FILE
from scratchd.engine_status import FILE_NAME
from scratchd.models import Commit, Trigger
from tests.cli.state_env import make_env

HEAVY = ("pygit2", "docker", "yaml", "requests", "apprise", "aiohttp", "apscheduler", "watchdog")
#: Standard modules that cost 10-20 ms each and that listing builds never needs.
UNNEEDED = ("socket", "uuid", "difflib")

#: The parts of scratchd ``builds`` has no use for: checking the config against the
#: machine, the ``[[engine]]`` parser, the daemon lock, log files, retention, and the
#: engine status reader while the daemon has written no ``engines.json``.
UNUSED_PARTS = (
    "scratchd.config.check",
    "scratchd.config.engines",
    "scratchd.store.lock",
    "scratchd.store.logs",
    "scratchd.store.retention",
    "scratchd.engine_status",
    "scratchd.placement",
    "gzip",
)

PROBE = """
import contextlib, io, sys
from scratchd.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:  # argparse's help and errors
        code = exc.code
print(code, *sorted(m for m in WATCH if m in sys.modules))
print(out.getvalue(), end="")
"""


def run_probe(*argv: str, watch: tuple[str, ...] = HEAVY + UNNEEDED) -> tuple[int, set[str], str]:
    """(exit code, which of ``watch`` got imported, stdout) of ``scratchd ARGV``."""
    out = subprocess.run(
        [sys.executable, "-c", f"WATCH = {watch!r}\n{PROBE}", *argv],
        capture_output=True,
        text=True,
        check=True,
    )
    first, _, printed = out.stdout.partition("\n")
    code, *modules = first.split()
    return int(code), set(modules), printed


def loaded(*argv: str) -> tuple[int, set[str]]:
    code, modules, _ = run_probe(*argv)
    return code, modules


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


@pytest.mark.parametrize("extra", [(), ("--repo", "app")])
def test_builds_skips_the_parts_of_config_and_store_it_does_not_use(tmp_path, extra):
    env = make_env(tmp_path)
    env.store().close()
    code, modules, _ = run_probe("builds", "--config", str(env.config), *extra, watch=UNUSED_PARTS)
    assert (code, modules) == (0, set())


#: What a plain ``builds`` command line does without: argparse and logging (its own reader,
#: nothing to log), the dataclasses of the config, the models and the store's records.
UNUSED_MACHINERY = (
    "argparse",
    "logging",
    "dataclasses",
    "pathlib",
    "scratchd.models",
    "scratchd.config.load",
    "scratchd.config.model",
    "scratchd.store.store",
    "scratchd.store.records",
)


@pytest.mark.parametrize(
    "extra", [(), ("--repo", "app"), ("--json",), ("--status", "passed", "--limit", "5")]
)
def test_plain_builds_skips_argparse_logging_and_dataclasses(tmp_path, extra):
    env = make_env(tmp_path)
    env.store().close()
    argv = ("builds", "--config", str(env.config), *extra)
    code, modules, _ = run_probe(*argv, watch=UNUSED_MACHINERY)
    assert (code, modules) == (0, set())


def test_builds_with_a_help_request_still_gets_argparse(tmp_path):
    code, modules, printed = run_probe("builds", "--help", watch=("argparse",))
    assert (code, modules) == (0, {"argparse"})
    assert printed.startswith("usage: scratchd builds")


ENGINE = '[[engine]]\nname = "local"\nurl = "unix:///run/docker.sock"\n'


def test_builds_reads_engine_status_only_once_the_daemon_wrote_it(tmp_path):
    """Engines configured: the ENGINE column is there either way, the reader only with a file."""
    env = make_env(tmp_path, ENGINE)
    store = env.store()
    (build,) = store.enqueue([Commit("app", "refs/heads/main", env.repo.head())], Trigger.PUSH)
    store.close()
    watch = ("scratchd.engine_status",)
    code, modules, before = run_probe("builds", "--config", str(env.config), watch=watch)
    assert (code, modules) == (0, set())
    assert before.splitlines()[1].split()[:2] == ["-", str(build.id)]

    (env.state.root / FILE_NAME).write_text(json.dumps({"builds": {str(build.id): "local"}}))
    code, modules, after = run_probe("builds", "--config", str(env.config), watch=watch)
    assert (code, modules) == (0, set(watch))
    assert after.splitlines()[1].split()[:2] == ["local", str(build.id)]
    assert after.splitlines()[0].split()[0] == before.splitlines()[0].split()[0] == "ENGINE"


def test_builds_names_the_engine_status_file_as_the_daemon_does():
    assert ENGINES_FILE == FILE_NAME
