"""Fixtures shared by the runner tests (backends and executor)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scratchd.runner.backend import PipelineDirs, PipelineJob


def pipeline_job(base: Path, **overrides) -> PipelineJob:
    """A PipelineJob whose directories exist under ``base`` (wercker's layout)."""
    root = base / "source"
    dirs = PipelineDirs(
        root=root,
        source=root,
        output=base / "output",
        cache=base / "cache",
        report=base / "report",
        pipeline=base,
    )
    for d in (dirs.root, dirs.output, dirs.cache, dirs.report):
        d.mkdir(parents=True, exist_ok=True)
    fields = {"name": "build", "run_id": "run-" + base.name, "dirs": dirs, **overrides}
    return PipelineJob(**fields)


@pytest.fixture
def make_pipeline_job(tmp_path):
    """``make_pipeline_job(**overrides)`` → a PipelineJob with real dirs in tmp_path."""
    return lambda **overrides: pipeline_job(tmp_path / "pipeline", **overrides)
