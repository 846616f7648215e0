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


# -- backend tests (host and docker) ----------------------------------------


class Lines:
    """An on_line sink that records (stream, text) in arrival order."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def __call__(self, stream: str, text: str) -> None:
        self.items.append((stream, text))

    def of(self, stream: str) -> list[str]:
        return [t for s, t in self.items if s == stream]


def run_step(backend, script: str, **kw):
    """Run ``script`` as one step; returns (exit code, Lines). Other kw go to StepCommand."""
    import threading

    from scratchd.runner.backend import StepCommand

    lines = Lines()
    cancel = kw.pop("cancel", None) or threading.Event()
    command = StepCommand(name=kw.pop("name", "step"), script=script, **kw)
    return backend.run(command, lines, cancel), lines


def docker_leftovers(docker_client, labels: dict) -> list[str]:
    """Names of the containers and networks that carry all of ``labels``."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    found = [c.name for c in docker_client.containers.list(all=True, filters=filters)]
    return found + [n.name for n in docker_client.networks.list(filters=filters)]


@pytest.fixture
def docker_labels(docker_client):
    """A label unique to one test; afterwards nothing carrying it may be left."""
    import secrets

    labels = {"org.scratchd.test": secrets.token_hex(6)}
    yield labels
    assert docker_leftovers(docker_client, labels) == []


@pytest.fixture
def new_docker_backend(docker_host, docker_labels):
    """``new_docker_backend(**kw)`` → a labelled DockerBackend, torn down after the test."""
    from scratchd.runner.docker_backend import DockerBackend

    made = []

    def make(**kw):
        kw.setdefault("base_url", docker_host)
        kw.setdefault("kill_grace", 1.0)
        kw.setdefault("drain_timeout", 1.0)
        made.append(DockerBackend(labels=docker_labels, **kw))
        return made[-1]

    yield make
    for backend in made:
        backend.teardown()


# -- executor tests -----------------------------------------------------------


def compiled(plan, **kw):
    """(BuildPlan, masker) for a parsed Plan, as the daemon's preparation makes them.

    ``kw`` are :class:`~scratchd.pipeline.compile.CompileInput` fields
    (commit, source, work_dir, cache_dir, env, secrets, pipelines ...).
    """
    from scratchd.pipeline.compile import CompileInput, plan_build
    from scratchd.redact import Redactor

    build = plan_build(plan, CompileInput(text="", path=plan.path, **kw))
    return build, Redactor(build.secret_values())
