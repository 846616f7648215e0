"""The type check CI runs, and proof that its strictness is where pyproject.toml says.

mypy also proves the wiring: ``cli/run.py`` hands the real store, scheduler,
watcher, executor and checkout to Service and WorkerPool, whose parameters
are the Protocols in ``scratchd.ports``, so a concrete class drifting from
what the daemon calls fails here, not in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy comes with the test extra")

ROOT = Path(__file__).resolve().parent.parent
UNTYPED = "\n\ndef _probe(value):\n    return value\n"


@pytest.fixture(scope="module")
def mypy(tmp_path_factory, monkeypatch_module):
    """Run mypy from the project root with pyproject.toml's settings and a shared cache."""
    cache = tmp_path_factory.mktemp("mypy-cache")
    monkeypatch_module.chdir(ROOT)

    def run(*args: str) -> tuple[int, str]:
        out, err, status = mypy_api.run(["--cache-dir", str(cache), *args])
        return status, out + err

    return run


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def test_the_whole_package_type_checks(mypy):
    status, output = mypy()
    assert status == 0, output


def shadowed(tmp_path: Path, module: str) -> list[str]:
    """Arguments that check ``module`` as if an untyped function were appended to it."""
    real = ROOT / "daemon" / module
    probe = tmp_path / real.name
    probe.write_text(real.read_text() + UNTYPED)
    return ["--shadow-file", str(real), str(probe)]


@pytest.mark.parametrize(
    "module",
    [
        "scratchd/image/types.py",
        "scratchd/registry/retry.py",
        "scratchd/store/lock.py",
        "scratchd/pipeline/plan.py",
    ],
)
def test_the_contract_layers_are_strict(mypy, tmp_path, module):
    status, output = mypy(*shadowed(tmp_path, module))
    assert status == 1 and "[no-untyped-def]" in output, output


def test_the_rest_is_checked_without_strictness(mypy, tmp_path):
    status, output = mypy(*shadowed(tmp_path, "scratchd/cli/logs.py"))
    assert status == 0, output
