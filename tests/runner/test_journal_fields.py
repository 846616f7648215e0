"""Backends' journal fields: the build's own, plus the run uuid as RUN_ID.

The end-to-end proof against a real journald is tests/test_service_journal.py
(host backend); this pins the docker backend to the same rule.
"""

from __future__ import annotations

from pathlib import Path

from scratchd.runner.backend import PipelineDirs, PipelineJob
from scratchd.runner.docker_backend import DockerBackend

BUILD = {"REPO": "cities", "COMMIT": "abc", "BUILD_ID": "42"}


def job() -> PipelineJob:
    d = Path("/nonexistent")
    dirs = PipelineDirs(root=d, source=d, output=d, cache=d, report=d, pipeline=d)
    return PipelineJob(name="deploy", run_id="9f" * 16, dirs=dirs, log_fields=BUILD)


def test_build_id_stays_the_build_number_and_the_uuid_is_run_id():
    assert job().journal_fields(STEP="push") == {
        **BUILD,
        "PIPELINE": "deploy",
        "RUN_ID": "9f" * 16,
        "STEP": "push",
    }


def test_docker_backend_logs_the_same_fields():
    backend = DockerBackend(client_factory=lambda: None)
    backend._job = job()
    assert backend._fields(STEP="push") == job().journal_fields(STEP="push")
    backend._job = None
    assert backend._fields(STEP="push") == {"STEP": "push"}
