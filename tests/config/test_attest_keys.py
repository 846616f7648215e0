"""The daemon's ``sbom``/``provenance``/``builder_id`` keys: defaults on, typos named."""

from __future__ import annotations

from scratchd.config import DaemonConfig
from scratchd.config.load import load_config
from tests.config.test_load import error_of, write


def test_attestations_are_on_by_default(tmp_path):
    config = load_config(write(tmp_path, '[[repo]]\nname = "a"\npath = "a"\n'))
    assert (config.daemon.sbom, config.daemon.provenance, config.daemon.builder_id) == (
        "spdx", "min", ""
    )  # fmt: skip
    assert DaemonConfig().sbom == "spdx"


def test_keys_turn_them_off_or_up(tmp_path):
    text = '[daemon]\nsbom = "none"\nprovenance = "max"\nbuilder_id = "https://ci.example/b"\n'
    daemon = load_config(write(tmp_path, text)).daemon
    assert (daemon.sbom, daemon.provenance, daemon.builder_id) == (
        "none", "max", "https://ci.example/b"
    )  # fmt: skip


def test_unknown_values_name_key_and_line(tmp_path):
    error = error_of(tmp_path, '[daemon]\nnotes = false\nprovenance = "full"\n')
    assert error.key == "daemon.provenance" or "provenance" in str(error)
    assert error.line == 3
