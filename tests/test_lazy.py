"""Packages that import their public names on first use still export every one of them."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import scratchd.config
import scratchd.store

PACKAGES = [scratchd.config, scratchd.store]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_public_name_resolves_to_its_defining_module(package):
    assert sorted(package.__all__) == sorted(package._HOME)
    for name in package.__all__:
        home = importlib.import_module(package._HOME[name])
        assert getattr(package, name) is getattr(home, name)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_an_unknown_name_is_an_attribute_error(package):
    with pytest.raises(AttributeError, match="no_such_name"):
        package.no_such_name  # noqa: B018


def test_importing_a_submodule_loads_none_of_its_siblings():
    """What the laziness is for: ``scratchd.store.store`` without locks, logs, retention."""
    probe = (
        "import sys, scratchd.store.store, scratchd.config.load\n"
        "from scratchd.config import load_config\n"
        "print(*sorted(m for m in sys.modules if m.startswith('scratchd.')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(out.stdout.split())
    assert {"scratchd.store.store", "scratchd.config.load"} <= loaded
    assert not loaded & {
        "scratchd.store.lock",
        "scratchd.store.logs",
        "scratchd.store.retention",
        "scratchd.config.check",
        "scratchd.config.engines",
    }
