"""The executor uses the build's one masker: output lines and error texts, daemon secrets too."""

from __future__ import annotations

import threading

from scratchd.errors import BackendError
from scratchd.models import BuildStatus, Secret
from scratchd.pipeline.compile import CompileInput, plan_build
from scratchd.pipeline.plan import Pipeline
from scratchd.redact import Masker
from scratchd.runner.executor import Executor
from scratchd.runner.host import HostBackend
from tests.runner.test_executor import COMMIT, plan_of, script

REGISTRY_PW = "daemon-registry-pw-5150"  # known to the daemon, not to the repository


def compiled(tmp_path, plan, masker: Masker):
    """The BuildPlan, with the build's masker taught its secrets as the preparation does."""
    (tmp_path / "source").mkdir(exist_ok=True)
    secrets = {"TOKEN": Secret("repo-token-8080")}
    masker.add(*secrets.values())
    build = plan_build(
        plan,
        CompileInput(
            text="",
            path=plan.path,
            commit=COMMIT,
            source=tmp_path / "source",
            work_dir=tmp_path / "work",
            cache_dir=tmp_path / "cache",
            executor="host",
            secrets=secrets,
        ),
    )
    masker.add(*build.secret_values())
    return build


def test_step_output_is_masked_with_the_builds_masker_and_its_parent(tmp_path):
    daemon = Masker([Secret(REGISTRY_PW)])
    build = Masker(parents=(daemon,))
    lines = []
    code = f'echo "pw {REGISTRY_PW}"; echo "token $TOKEN"; exit 4'
    plan = plan_of(Pipeline("build", steps=(script("leak", code),)))
    executor = Executor(lambda kind: HostBackend(kill_grace=1.0), lines.append)
    result = executor.run(compiled(tmp_path, plan, build), threading.Event(), build)
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
    outcome = Executor(lambda kind: _LeakyBackend()).run(
        compiled(tmp_path, plan, build), threading.Event(), build
    )
    assert outcome.status == BuildStatus.ERROR
    assert outcome.message == "login to registry failed with ***"
    assert REGISTRY_PW not in outcome.reason
