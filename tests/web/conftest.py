"""Fixtures of the web tests: a seeded state directory and a real ``scratchd web``."""

from __future__ import annotations

import pytest

from tests.web.support import WebProcess, seed, write_config


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """(config path, state dir, build ids) with three finished builds and a running one.

    Shared by a module's tests, which only read it (the web process cannot write).
    """
    tmp_path = tmp_path_factory.mktemp("seeded")
    state = tmp_path / "state"
    ids = seed(state)
    return write_config(tmp_path / "scratchd.toml", state, repos=("app", "idle")), state, ids


@pytest.fixture(scope="module")
def web(seeded):
    proc = WebProcess(seeded[0]).start()
    yield proc
    output = proc.stop()
    assert "Traceback" not in output, output
