"""The executor on the real host backend: environment, build → deploy, failures, secrets."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from scratchd.errors import BackendError, PipelineError
from scratchd.models import BuildStatus, CommitInfo, Secret
from scratchd.outcome import decide
from scratchd.pipeline.plan import Pipeline, Plan, Step
from scratchd.runner.executor import Executor
from scratchd.runner.host import HostBackend
from scratchd.runner.sink import OutputLine
from tests.runner.conftest import compiled

COMMIT = CommitInfo(
    sha="0123456789abcdef0123456789abcdef01234567",
    branch="main",
    repo="cities",
    commit_time=1_700_000_000,
    domain="git.example.org",
    owner="acme",
    repository="cities",
)


def script(name: str, code: str, **kw) -> Step:
    return Step("script", name, code="set -e\n" + code, **kw)


class Run:
    """Runs plans on the host backend and keeps every line a consumer saw."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.source = tmp / "source"
        self.source.mkdir()
        self.cache = tmp / "cache"
        self.lines: list[OutputLine] = []
        self.count = 0

    def __call__(self, plan: Plan, *, cancel=None, **kw):
        self.count += 1
        executor = Executor(lambda kind: HostBackend(kill_grace=1.0), self.lines.append)
        kw.setdefault("commit", COMMIT)
        build, masker = compiled(
            plan,
            source=self.source,
            work_dir=self.tmp / f"work{self.count}",
            cache_dir=self.cache,
            executor="host",
            **kw,
        )
        return executor.run(build, cancel or threading.Event(), masker)

    def stdout(self, step: str) -> list[str]:
        return [ln.text for ln in self.lines if ln.step == step and ln.stream == "stdout"]

    def env_of(self, step: str) -> dict[str, str]:
        return dict(t.split("=", 1) for t in self.stdout(step) if "=" in t)


@pytest.fixture
def run(tmp_path) -> Run:
    return Run(tmp_path)


def plan_of(*pipelines: Pipeline, **kw) -> Plan:
    return Plan(path="wercker.yml", pipelines=pipelines, **kw)


DUMP_ENV = "env | grep -E '^(WERCKER|CI=|BUILD=|DEPLOY=)' | sort"


def test_wercker_environment_and_output_dir_becomes_deploy_root(run):
    (run.source / "app.txt").write_text("v1")
    plan = plan_of(
        Pipeline("build", steps=(script("env", DUMP_ENV + "\ncp app.txt $WERCKER_OUTPUT_DIR/"),)),
        Pipeline("deploy", steps=(script("denv", DUMP_ENV + "\ncat app.txt; echo\npwd"),)),
    )
    result = run(plan)
    assert result.status == BuildStatus.PASSED, result.output
    build, deploy = run.env_of("env"), run.env_of("denv")
    assert build["WERCKER"] == build["CI"] == build["BUILD"] == "true"
    assert "DEPLOY" not in build and deploy["DEPLOY"] == "true" and "BUILD" not in deploy
    assert build["WERCKER_GIT_COMMIT"] == COMMIT.sha
    assert (build["WERCKER_GIT_DOMAIN"], build["WERCKER_GIT_OWNER"]) == ("git.example.org", "acme")
    assert (build["WERCKER_GIT_REPOSITORY"], build["WERCKER_GIT_BRANCH"]) == ("cities", "main")
    assert build["WERCKER_ROOT"] == build["WERCKER_SOURCE_DIR"] == str(run.source)
    assert build["WERCKER_CACHE_DIR"] == deploy["WERCKER_CACHE_DIR"] == str(run.cache)
    assert deploy["WERCKER_ROOT"] == build["WERCKER_OUTPUT_DIR"]
    assert deploy["WERCKER_OUTPUT_DIR"] != build["WERCKER_OUTPUT_DIR"]
    assert build["WERCKER_RUN_ID"] == deploy["WERCKER_RUN_ID"]
    assert build["WERCKER_BUILD_ID"] and deploy["WERCKER_DEPLOY_ID"]
    assert build["WERCKER_STEP_NAME"] == "env" and build["WERCKER_STEP_ID"]
    for var in ("WERCKER_PIPELINE_DIR", "WERCKER_REPORT_DIR"):
        assert Path(build[var]).is_dir()
    assert "v1" in run.stdout("denv")
    assert deploy["WERCKER_ROOT"] in run.stdout("denv")  # steps run in the source dir
    assert [s.name for s in result.steps] == ["env", "denv"]


def test_cache_dir_persists_between_builds(run):
    plan = plan_of(
        Pipeline(
            "build",
            steps=(
                script("count", "echo x >> $WERCKER_CACHE_DIR/n; wc -l < $WERCKER_CACHE_DIR/n"),
            ),
        )
    )
    run(plan)
    run(plan)
    assert run.stdout("count") == ["1", "2"]


def test_env_and_secrets_reach_steps_and_secrets_are_masked(run):
    secret = "s3cr3t-value-42"
    (run.source / "app").write_text("binary")
    plan = plan_of(
        Pipeline(
            "build",
            steps=(
                script("show", 'echo "user=$USERNAME token=$TOKEN"; echo "$TOKEN" >&2'),
                Step(
                    "internal/docker-scratch-push",
                    "push",
                    properties=(("repository", "Bad/$TOKEN"), ("password", "literal-pw-99")),
                ),
            ),
        )
    )
    result = run(plan, env={"USERNAME": "ada"}, secrets={"TOKEN": Secret(secret)})
    assert result.status == BuildStatus.FAILED
    assert "user=ada token=***" in run.stdout("show")
    everything = result.output + result.message + "".join(repr(ln) for ln in run.lines)
    assert secret not in everything and "literal-pw-99" not in everything
    assert result.failed_step == "push" and "***" in result.message


def test_password_option_from_env_is_masked_from_the_first_line(run):
    plan = plan_of(
        Pipeline(
            "build",
            steps=(
                script("early", 'echo "pass is $REG_PASS"'),
                Step(
                    "internal/docker-scratch-push",
                    "push",
                    properties=(("repository", "127.0.0.1:9/a/b"), ("password", "$REG_PASS")),
                ),
            ),
        )
    )
    run(plan, env={"REG_PASS": "env-pass-777"})
    assert run.stdout("early") == ["pass is ***"]


def test_failing_step_names_step_and_exit_code_and_after_steps_run(run):
    plan = plan_of(
        Pipeline(
            "build",
            steps=(
                script("ok", "echo fine"),
                script("boom", "echo about to fail; exit 7"),
                script("never", "echo nope"),
            ),
            after_steps=(
                script(
                    "notify",
                    'echo "$WERCKER_RESULT|$WERCKER_FAILED_STEP_DISPLAY_NAME|"'
                    '"$WERCKER_FAILED_STEP_MESSAGE"',
                ),
            ),
        ),
        Pipeline("deploy", steps=(script("deploy-step", "echo deploying"),)),
    )
    result = run(plan)
    assert result.status == BuildStatus.FAILED
    assert (result.failed_pipeline, result.failed_step, result.exit_code) == ("build", "boom", 7)
    assert "status 7" in result.message
    assert run.stdout("never") == [] and run.stdout("deploy-step") == []
    assert run.stdout("notify") == ["failed|boom|step 'boom' exited with status 7"]
    statuses = [(s.name, s.status, s.after) for s in result.steps]
    assert statuses == [
        ("ok", "passed", False),
        ("boom", "failed", False),
        ("notify", "passed", True),
    ]


def test_after_steps_see_passed(run):
    plan = plan_of(
        Pipeline(
            "build",
            steps=(script("a", "true"),),
            after_steps=(script("n", "echo $WERCKER_RESULT"),),
        )
    )
    assert run(plan).passed
    assert run.stdout("n") == ["passed"]


def test_command_timeout_fails_the_step(run):
    plan = plan_of(
        Pipeline("build", steps=(script("slow", "echo start; sleep 30"),)), command_timeout=1
    )
    started = time.monotonic()
    result = run(plan)
    assert time.monotonic() - started < 15
    assert result.status == BuildStatus.FAILED and result.failed_step == "slow"
    assert "timeout" in result.message.lower() or "timed out" in result.message.lower()


def test_no_response_timeout_fails_the_step(run):
    plan = plan_of(
        Pipeline("build", steps=(script("quiet", "echo one; sleep 30"),)),
        no_response_timeout=1,
    )
    started = time.monotonic()
    result = run(plan)
    assert time.monotonic() - started < 15
    assert result.status == BuildStatus.FAILED and result.failed_step == "quiet"
    assert "output" in result.message.lower() or "response" in result.message.lower()


def test_cancel_stops_the_build_and_leaves_no_process(run, tmp_path):
    pid_file = tmp_path / "bg.pid"
    plan = plan_of(
        Pipeline(
            "build",
            steps=(
                script("long", f"sleep 300 & echo $! > {pid_file}; echo started; sleep 300"),
                script("next", "echo no"),
            ),
            after_steps=(script("after", "echo after"),),
        )
    )
    cancel = threading.Event()

    def cancel_when_started() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "started" not in run.stdout("long"):
            time.sleep(0.05)
        cancel.set()

    threading.Thread(target=cancel_when_started, daemon=True).start()
    result = run(plan, cancel=cancel)
    assert result.status == BuildStatus.CANCELLED
    assert run.stdout("next") == [] and run.stdout("after") == []
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.1)
    assert not _alive(pid), "the step's background sleep survived the cancel"


def test_cancelled_before_start_runs_nothing(run):
    cancel = threading.Event()
    cancel.set()
    result = run(plan_of(Pipeline("build", steps=(script("a", "echo ran"),))), cancel=cancel)
    assert result.status == BuildStatus.CANCELLED and result.steps == ()
    assert run.stdout("a") == []


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_local_steps_file_url_and_vendored_with_properties(run):
    steps_dir = run.source / "tools" / "say"
    steps_dir.mkdir(parents=True)
    (steps_dir / "run.sh").write_text('echo "say $WERCKER_SAY_WORD/$WERCKER_SAY_TIMES in $PWD"\n')
    (steps_dir / "step.yml").write_text("name: say\nproperties:\n  times:\n    default: 2\n")
    vendored = run.source / ".scratchd" / "steps" / "slack-notify"
    vendored.mkdir(parents=True)
    (vendored / "run.sh").write_text(
        'echo "url=$WERCKER_SLACK_NOTIFY_WEBHOOK_URL root=$WERCKER_STEP_ROOT"\n'
        'test -d "$WERCKER_STEP_TEMP" && echo temp-ok\n'
        'if [ "$WERCKER_RESULT" = failed ]; then fail "told you"; fi\n'
    )
    plan = plan_of(
        Pipeline(
            "build",
            steps=(
                Step(
                    'say "file://tools/say"',
                    "say",
                    properties=(("word", "hi $WERCKER_GIT_BRANCH"),),
                ),
            ),
        ),
        Pipeline(
            "deploy",
            steps=(
                Step(
                    "acme/slack-notify@1.2.0",
                    "slack",
                    properties=(("webhook-url", "http://x/$WERCKER_GIT_OWNER"),),
                ),
            ),
        ),
    )
    result = run(plan)
    assert result.passed, result.output
    assert run.stdout("say") == [f"say hi main/2 in {run.source}"]
    url, temp = run.stdout("slack")
    assert url.startswith("url=http://x/acme root=") and temp == "temp-ok"
    # deploy works on the build output, so the step was staged and removed again
    assert not any((run.cache / ".scratchd-steps").glob("*"))


def test_registry_step_not_vendored_says_how_to_vendor(run):
    plan = plan_of(Pipeline("build", steps=(Step("wercker/golint@1.0.0", "golint", line=4),)))
    with pytest.raises(PipelineError) as info:  # found when compiling, before any box starts
        run(plan)
    result = decide(error=info.value)
    assert result.status == BuildStatus.FAILED and result.failed_step == "golint"
    assert "wercker.yml:4" in result.message and ".scratchd/steps/golint/" in result.message


def test_local_step_outside_repository_is_refused(run):
    plan = plan_of(Pipeline("build", steps=(Step('evil "file://../../etc"', "evil"),)))
    with pytest.raises(PipelineError) as info:
        run(plan)
    result = decide(error=info.value)
    assert result.status == BuildStatus.FAILED and "outside the repository" in result.message


def test_retired_internal_step_is_skipped(run):
    plan = plan_of(
        Pipeline("build", steps=(Step("internal/watch", "watch"), script("next", "echo ran")))
    )
    result = run(plan)
    assert result.passed and run.stdout("next") == ["ran"]
    assert any("skipped internal/watch" in ln.text for ln in run.lines)


def test_docker_steps_on_the_host_executor_are_a_clear_failure(run):
    plan = plan_of(
        Pipeline(
            "build",
            steps=(
                Step("internal/docker-push", "push", properties=(("repository", "127.0.0.1:1/x"),)),
            ),
        )
    )
    result = run(plan)
    assert result.status == BuildStatus.FAILED and "--executor docker" in result.message


def test_pipeline_selection(run):
    plan = plan_of(
        Pipeline("build", steps=(script("b", "echo b"),)),
        Pipeline("staging", steps=(script("s", "echo s"),)),
    )
    assert run(plan).passed and run.stdout("s") == []
    assert run(plan, pipelines=("staging",)).passed and run.stdout("s") == ["s"]
    with pytest.raises(PipelineError, match="no pipeline 'prod'"):
        run(plan, pipelines=("prod",))


def test_deploy_target_steps_replace_the_default_steps(run):
    deploy = Pipeline(
        "deploy",
        steps=(script("default", "echo default"),),
        targets=(("production", (script("prod", "echo $WERCKER_DEPLOYTARGET_NAME"),)),),
    )
    assert run(plan_of(deploy), deploy_target="production").passed
    assert run.stdout("prod") == ["production"] and run.stdout("default") == []
    assert run(plan_of(deploy)).passed and run.stdout("default") == ["default"]


def test_every_line_carries_pipeline_step_stream_and_time(run):
    before = time.time()
    run(plan_of(Pipeline("build", steps=(script("two", "echo out; echo err >&2"),))))
    lines = [ln for ln in run.lines if ln.step == "two" and ln.stream != "info"]
    assert {(ln.pipeline, ln.stream, ln.text) for ln in lines} == {
        ("build", "stdout", "out"),
        ("build", "stderr", "err"),
    }
    assert all(before <= ln.timestamp <= time.time() for ln in lines)
    assert len({ln.build_id for ln in run.lines}) == 1


class _BrokenBackend:
    """Unit seam: a backend whose setup fails like an engine that is down."""

    def __init__(self) -> None:
        self.teardowns = 0

    def setup(self, job):
        raise BackendError(f"cannot reach engine (token {job.env['TOKEN']})")

    def env_paths(self):
        return {}

    def run(self, command, on_line, cancel):
        raise AssertionError("run after a failed setup")

    def teardown(self):
        self.teardowns += 1


def test_infrastructure_error_is_raised_redacted_and_torn_down(tmp_path):
    backend = _BrokenBackend()
    executor = Executor(lambda kind: backend)
    build, masker = compiled(
        plan_of(Pipeline("build", steps=(script("a", "true"),))),
        commit=COMMIT,
        source=tmp_path,
        work_dir=tmp_path / "w",
        cache_dir=tmp_path / "c",
        secrets={"TOKEN": Secret("tok-123456")},
    )
    outcome = executor.run(build, threading.Event(), masker)
    # an infrastructure error is the build's outcome (retryable), not an exception
    assert outcome.status == BuildStatus.ERROR and outcome.retryable
    assert "tok-123456" not in outcome.message and "***" in outcome.message
    assert backend.teardowns == 1
    assert os.path.isdir(tmp_path / "w" / "build")
