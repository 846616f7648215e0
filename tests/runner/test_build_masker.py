"""The executor uses the build's one masker: output lines and error texts, daemon secrets too."""

from __future__ import annotations

import threading

import pytest

from scratchd.errors import BackendError
from scratchd.models import BuildStatus, Secret
from scratchd.pipeline.plan import Pipeline
from scratchd.redact import Masker
from scratchd.runner.executor import BuildRequest, Executor
from scratchd.runner.host import HostBackend
from tests.runner.test_executor import COMMIT, plan_of, script

REGISTRY_PW = "daemon-registry-pw-5150"  # known to the daemon, not to the repository


def request(tmp_path, plan, masker) -> BuildRequest:
    (tmp_path / "source").mkdir(exist_ok=True)
    return BuildRequest(
        plan=plan,
        commit=COMMIT,
        source=tmp_path / "source",
        work_dir=tmp_path / "work",
        cache_dir=tmp_path / "cache",
        executor="host",
        secrets={"TOKEN": Secret("repo-token-8080")},
        masker=masker,
    )


def test_step_output_is_masked_with_the_builds_masker_and_its_parent(tmp_path):
    daemon = Masker([Secret(REGISTRY_PW)])
    build = Masker(parents=(daemon,))
    lines = []
    code = f'echo "pw {REGISTRY_PW}"; echo "token $TOKEN"; exit 4'
    plan = plan_of(Pipeline("build", steps=(script("leak", code),)))
    executor = Executor(lambda kind: HostBackend(kill_grace=1.0), lines.append)
    result = executor.run(request(tmp_path, plan, build), threading.Event())
    assert result.status == BuildStatus.FAILED
    stdout = [ln.text for ln in lines if ln.stream == "stdout"]
    assert stdout == ["pw ***", "token ***"]
    assert build.redact("repo-token-8080") == "***"  # the request's secrets joined the same masker
    assert REGISTRY_PW not in result.output and "repo-token-8080" not in result.output


class _LeakyBackend:
    """Unit seam: an engine error whose text quotes the daemon's registry password."""

    def setup(self, job):
        raise BackendError(f"login to registry failed with {REGISTRY_PW}")

    def env_paths(self):
        return {}

    def run(self, command, on_line, cancel):
        raise AssertionError("run after a failed setup")

    def teardown(self):
        pass


def test_error_texts_are_masked_with_the_builds_masker(tmp_path):
    build = Masker(parents=(Masker([Secret(REGISTRY_PW)]),))
    plan = plan_of(Pipeline("build", steps=(script("a", "true"),)))
    with pytest.raises(BackendError) as info:
        Executor(lambda kind: _LeakyBackend()).run(
            request(tmp_path, plan, build), threading.Event()
        )
    assert str(info.value) == "login to registry failed with ***"
