"""DockerBackend against the real engine with the local busybox box."""

from __future__ import annotations

import secrets
import threading
import time

import pytest

from scratchd.errors import BackendError, BuildCancelled, PipelineError, StepTimeout
from scratchd.pipeline.plan import Box
from scratchd.runner.backend import StepCommand
from tests.runner.conftest import Lines, docker_leftovers, run_step


@pytest.fixture
def backend(new_docker_backend, make_pipeline_job, busybox_box):
    b = new_docker_backend()
    b.setup(make_pipeline_job(box=Box(id=busybox_box), env={"JOB_VAR": "from-job"}))
    return b


run = run_step


def processes(backend) -> list[str]:
    return [" ".join(p[-1:]) for p in backend.container.top(ps_args="-o pid,args")["Processes"]]


def test_state_env_cwd_and_mounts(backend, make_pipeline_job):
    host_dirs = make_pipeline_job().dirs
    (host_dirs.source / "sub").mkdir()
    assert run(backend, "set -e\necho built > artifact\ncp artifact $WERCKER_OUTPUT_DIR/\n")[0] == 0
    code, lines = run(
        backend,
        'set -e\ncat ../artifact\npwd\necho "$JOB_VAR $STEP_VAR $WERCKER_CACHE_DIR"\n',
        cwd="sub",
        env={"STEP_VAR": "from-step"},
    )
    assert code == 0
    assert lines.of("stdout") == [
        "built",
        "/pipeline/source/sub",
        "from-job from-step /pipeline/cache",
    ]
    assert (host_dirs.output / "artifact").read_text() == "built\n"
    assert backend.env_paths()["WERCKER_ROOT"] == "/pipeline/source"


def test_streams_order_exit_codes_and_shebang(backend):
    code, lines = run(backend, "echo one; echo err1 >&2; echo two; printf tail; exit 4")
    assert code == 4
    assert lines.of("stdout") == ["one", "two", "tail"]
    assert lines.of("stderr") == ["err1"]
    code, lines = run(backend, '#!/bin/sh\necho "ran $0"\n')
    assert (code, lines.of("stdout")) == (0, ["ran /pipeline/steps/step-002"])


def test_lines_are_delivered_while_the_step_runs(backend, make_pipeline_job):
    gate = make_pipeline_job().dirs.source / "gate"
    seen = Lines()

    def on_line(stream: str, text: str) -> None:
        seen(stream, text)
        if text == "waiting":
            gate.touch()

    script = "echo waiting\nwhile [ ! -e gate ]; do sleep 0.05; done\necho released\n"
    cmd = StepCommand(name="gate", script=script, command_timeout=20)
    assert backend.run(cmd, on_line, threading.Event()) == 0
    assert seen.of("stdout") == ["waiting", "released"]


def test_background_processes_live_until_teardown_like_wercker(backend, docker_client):
    code, _ = run(backend, "sleep 1000 >/dev/null 2>&1 &\necho started")
    assert code == 0
    assert any("sleep 1000" in p for p in processes(backend))
    name = backend.container.name
    backend.teardown()
    assert not docker_client.containers.list(all=True, filters={"name": name})


def test_command_timeout_kills_every_process_of_the_step(backend):
    started = time.monotonic()
    with pytest.raises(StepTimeout, match="command-timeout"):
        run(backend, "sleep 1000 &\nsleep 1001\n", command_timeout=1)
    assert time.monotonic() - started < 10
    assert not [p for p in processes(backend) if "sleep 100" in p]
    assert run(backend, "echo still usable")[0] == 0  # after-steps can still run


def test_no_response_timeout(backend):
    with pytest.raises(StepTimeout, match="no-response-timeout") as info:
        run(backend, "echo start; sleep 1000", name="quiet", no_response_timeout=1)
    assert info.value.step == "quiet"
    assert not [p for p in processes(backend) if "sleep 1000" in p]


def test_cancel_from_another_thread(backend):
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    try:
        with pytest.raises(BuildCancelled):
            run(backend, "sleep 1000 & wait", cancel=cancel)
    finally:
        timer.cancel()
    assert not [p for p in processes(backend) if "sleep 1000" in p]


def test_files_written_as_root_are_handed_back(new_docker_backend, make_pipeline_job, busybox_box):
    b = new_docker_backend(owner=(12345, 12346))
    job = make_pipeline_job(box=Box(id=busybox_box))
    b.setup(job)
    assert run(b, "mkdir -p $WERCKER_OUTPUT_DIR/d && echo x > $WERCKER_OUTPUT_DIR/d/f")[0] == 0
    b.teardown()
    for path in (job.dirs.output / "d", job.dirs.output / "d" / "f"):
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (12345, 12346)


def test_missing_box_image_is_a_backend_error(new_docker_backend, make_pipeline_job):
    b = new_docker_backend()
    box = Box(id=f"scratchd-test/no-such-box-{secrets.token_hex(4)}", tag="v1")
    with pytest.raises(BackendError, match=r"no-such-box-\w+:v1 is not available locally"):
        b.setup(make_pipeline_job(box=box))
    b.teardown()
    b.teardown()


def test_a_pipeline_without_box_is_a_pipeline_error(new_docker_backend, make_pipeline_job):
    with pytest.raises(PipelineError, match="has no box"):
        new_docker_backend().setup(make_pipeline_job())


def test_engine_down_is_a_backend_error_not_a_step_failure(
    new_docker_backend, make_pipeline_job, busybox_box, tmp_path
):
    b = new_docker_backend(base_url=f"unix://{tmp_path / 'dead.sock'}")
    with pytest.raises(BackendError, match="not reachable") as info:
        b.setup(make_pipeline_job(box=Box(id=busybox_box)))
    assert "dead.sock" in str(info.value)
    b.teardown()


def test_teardown_without_setup_and_twice(
    new_docker_backend, backend, docker_client, docker_labels
):
    new_docker_backend().teardown()
    assert docker_leftovers(
        docker_client, docker_labels
    )  # the backend fixture's container and network
    backend.teardown()
    backend.teardown()
    assert docker_leftovers(docker_client, docker_labels) == []
    with pytest.raises(BackendError, match="before setup"):
        run(backend, "true")


def test_scripts_too_long_for_one_argument_still_run(backend):
    script = "# " + "x" * 150_000 + "\necho long-ok\n"
    code, lines = run(backend, script)
    assert (code, lines.of("stdout")) == (0, ["long-ok"])
    code, lines = run(backend, "#!/bin/sh\n# " + "y" * 150_000 + '\necho "$0"\n')
    assert (code, lines.of("stdout")) == (0, ["/pipeline/steps/step-002"])


def test_teardown_copes_with_a_container_removed_behind_its_back(
    backend, docker_client, docker_labels
):
    docker_client.containers.get(backend.container.name).remove(force=True)
    backend.teardown()
    assert docker_leftovers(docker_client, docker_labels) == []


def test_engine_lost_mid_step_is_a_backend_error(backend, monkeypatch):
    """A seam: the real exec starts, then its output stream breaks like a dropped socket."""
    import requests

    real_start = backend.client.api.exec_start

    def breaking_start(exec_id, **kw):
        chunks = real_start(exec_id, **kw)

        def gen():
            yield next(chunks)
            raise requests.ConnectionError("connection reset by peer")

        return gen()

    monkeypatch.setattr(backend.client.api, "exec_start", breaking_start)
    with pytest.raises(BackendError, match="connection reset"):
        run(backend, "echo first; sleep 5; echo never")


def _argv0(backend) -> str:
    code, lines = run(backend, "tr '\\0' '\\n' < /proc/$$/cmdline | head -n 1")
    assert code == 0
    return lines.of("stdout")[0]


def test_boxes_without_bash_run_scripts_in_sh(backend):
    assert _argv0(backend) == "/bin/sh"


def test_boxes_with_bash_run_scripts_in_bash_like_wercker(
    new_docker_backend, make_pipeline_job, busybox_box, docker_client, docker_labels
):
    # A stand-in /bin/bash that marks the environment, then runs busybox sh.
    fake_bash = '#!/bin/sh\nexport RAN_BY=bash\nexec /bin/sh "$@"\n'
    maker = docker_client.containers.run(
        busybox_box,
        ["sh", "-c", f"printf '{fake_bash}' > /bin/bash && chmod 755 /bin/bash"],
        detach=True,
        labels=docker_labels,
    )
    assert maker.wait()["StatusCode"] == 0
    repo = f"scratchd-test/with-bash-{secrets.token_hex(4)}"
    maker.commit(repository=repo, tag="latest")
    maker.remove()
    b = new_docker_backend()
    try:
        b.setup(make_pipeline_job(box=Box(id=f"{repo}:latest")))
        code, lines = run(b, 'echo "ran by ${RAN_BY:-sh}"')
        assert (code, lines.of("stdout")) == (0, ["ran by bash"])
    finally:
        b.teardown()
        docker_client.images.remove(f"{repo}:latest")
