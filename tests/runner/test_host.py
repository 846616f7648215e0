"""HostBackend against real processes: env, cwd, streaming, timeouts, no orphans."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from scratchd.errors import BackendError, BuildCancelled, StepTimeout
from scratchd.runner.backend import StepCommand
from scratchd.runner.host import HostBackend
from scratchd.runner.process import group_members
from scratchd.runner.stepwatch import MAX_LINE_CHARS
from tests.runner.conftest import Lines, run_step


def alive(pid: int) -> bool:
    """True while ``pid`` is a live process (a zombie is dead: it only awaits reaping)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


@pytest.fixture
def backend(make_pipeline_job):
    b = HostBackend(kill_grace=1.0, drain_timeout=1.0)
    b.setup(make_pipeline_job(env={"JOB_VAR": "from-job"}))
    yield b
    b.teardown()


run = run_step


def source(backend) -> Path:
    return Path(backend.env_paths()["WERCKER_SOURCE_DIR"])


def test_state_env_and_cwd_carry_the_pipeline(backend):
    (source(backend) / "sub").mkdir()
    assert run(backend, "set -e\necho built > artifact\n")[0] == 0
    code, lines = run(
        backend,
        'set -e\ncat ../artifact\npwd\necho "$JOB_VAR $STEP_VAR"\n',
        cwd="sub",
        env={"STEP_VAR": "from-step"},
    )
    assert code == 0
    assert lines.of("stdout") == ["built", str(source(backend) / "sub"), "from-job from-step"]


def test_daemon_environment_is_not_inherited_beyond_the_allowlist(make_pipeline_job):
    b = HostBackend(environ={"PATH": "/usr/bin:/bin", "DAEMON_TOKEN": "s3cret"})
    b.setup(make_pipeline_job())
    try:
        code, lines = run(b, 'echo "path=$PATH token=${DAEMON_TOKEN:-unset}"')
    finally:
        b.teardown()
    assert (code, lines.of("stdout")) == (0, ["path=/usr/bin:/bin token=unset"])


def test_env_paths_are_the_real_host_directories(backend):
    paths = backend.env_paths()
    code, lines = run(backend, 'echo "$PWD"; echo "$WERCKER_OUTPUT_DIR"', env=dict(paths))
    assert code == 0
    assert lines.of("stdout") == [paths["WERCKER_SOURCE_DIR"], paths["WERCKER_OUTPUT_DIR"]]
    assert all(Path(p).is_dir() for p in paths.values())


def test_streams_are_separate_and_ordered(backend):
    code, lines = run(backend, "echo one; echo err1 >&2; echo two; echo err2 >&2; printf tail")
    assert code == 0
    assert lines.of("stdout") == ["one", "two", "tail"]
    assert lines.of("stderr") == ["err1", "err2"]


def test_lines_are_delivered_while_the_step_runs(backend):
    """The step waits for a file that only on_line creates: buffering would time out."""
    gate = source(backend) / "gate"
    seen = Lines()

    def on_line(stream: str, text: str) -> None:
        seen(stream, text)
        if text == "waiting":
            gate.touch()

    script = "echo waiting\nwhile [ ! -e gate ]; do sleep 0.05; done\necho released\n"
    cmd = StepCommand(name="gate", script=script, command_timeout=10)
    assert backend.run(cmd, on_line, threading.Event()) == 0
    assert seen.of("stdout") == ["waiting", "released"]


def test_long_lines_and_invalid_utf8_survive(backend):
    n = MAX_LINE_CHARS * 2 + 10
    code, lines = run(backend, f"head -c {n} /dev/zero | tr '\\0' x; echo; printf 'caf\\351\\n'")
    assert code == 0
    out = lines.of("stdout")
    assert "".join(out[:-1]) == "x" * n
    assert all(len(line) <= MAX_LINE_CHARS for line in out)
    assert out[-1] == "caf\ufffd"


def test_exit_codes_and_shebang_scripts(backend):
    assert run(backend, "exit 3")[0] == 3
    code, lines = run(backend, '#!/bin/sh\necho "interpreter ran $0"\nexit 0\n')
    assert code == 0
    assert lines.of("stdout")[0].startswith("interpreter ran /")


def test_missing_cwd_is_a_step_failure_with_a_message(backend):
    code, lines = run(backend, "true", cwd="no/such/dir")
    assert code == 1
    assert "no/such/dir" in lines.of("stderr")[0]


def test_command_timeout_kills_the_group(backend):
    pidfile = source(backend) / "bg.pid"
    started = time.monotonic()
    with pytest.raises(StepTimeout, match="command-timeout"):
        run(backend, "sleep 1000 & echo $! > bg.pid\nsleep 1000\n", command_timeout=1)
    assert time.monotonic() - started < 6
    assert not alive(int(pidfile.read_text()))


def test_no_response_timeout_fires_without_output_and_resets_with_it(backend):
    chatty = "i=0; while [ $i -lt 8 ]; do echo tick; sleep 0.25; i=$((i+1)); done"
    code, lines = run(backend, chatty, no_response_timeout=1.5)
    assert code == 0 and len(lines.of("stdout")) == 8
    with pytest.raises(StepTimeout, match="no-response-timeout") as info:
        run(backend, "echo start; sleep 1000", name="quiet", no_response_timeout=1)
    assert info.value.step == "quiet"


def test_cancel_from_another_thread_kills_everything(backend):
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    try:
        with pytest.raises(BuildCancelled):
            run(backend, "sleep 1000 & echo $! > bg.pid\nwait\n", cancel=cancel)
    finally:
        timer.cancel()
    assert not alive(int((source(backend) / "bg.pid").read_text()))


def test_background_children_do_not_outlive_a_successful_step(backend):
    script = (
        "sleep 1000 & echo $! > plain.pid\n"
        "sh -c 'trap \"\" TERM; exec sleep 1000' & echo $! > stubborn.pid\n"
        "echo done\n"
    )
    started = time.monotonic()
    code, lines = run(backend, script)
    assert (code, lines.of("stdout")) == (0, ["done"])
    assert time.monotonic() - started < 8
    for name in ("plain.pid", "stubborn.pid"):
        pid = int((source(backend) / name).read_text())
        assert not alive(pid), name
        assert group_members(pid) == []


def test_teardown_is_idempotent_and_safe_without_setup(make_pipeline_job, tmp_path):
    HostBackend().teardown()
    b = HostBackend()
    with pytest.raises(BackendError, match="does not exist"):
        b.setup(make_pipeline_job(dirs=_missing_source_dirs(make_pipeline_job, tmp_path)))
    b.teardown()
    b.setup(make_pipeline_job())
    b.teardown()
    b.teardown()
    with pytest.raises(BackendError, match="before setup"):
        b.run(StepCommand(name="late", script="true"), Lines(), threading.Event())


def _missing_source_dirs(make_pipeline_job, tmp_path):
    from dataclasses import replace

    dirs = make_pipeline_job().dirs
    return replace(dirs, source=tmp_path / "nowhere", root=tmp_path / "nowhere")


def test_scripts_run_in_bash_like_wercker_where_the_host_has_it(backend):
    # Real wercker.yml scripts use bash-isms; Debian's /bin/sh (dash) rejects them.
    code, lines = run(backend, 'set -o pipefail\n[[ "a" == a ]] && echo "bash ${BASH_VERSION%%.*}"')
    assert code == 0
    assert lines.of("stdout")[0].startswith("bash ")


def test_an_explicit_shell_is_used_as_given(make_pipeline_job):
    b = HostBackend(shell=("/bin/sh",))  # noqa: S604 - a shell path, not shell=True
    b.setup(make_pipeline_job())
    try:
        code, lines = run(b, "tr '\\0' ' ' < /proc/$$/cmdline")
    finally:
        b.teardown()
    assert code == 0
    assert lines.of("stdout")[0].startswith("/bin/sh ")
