"""Builds run below the daemon's CPU priority: niced host steps, lighter docker containers.

Busy builds on both cores must never delay the control loop noticing the
next commit, so a step process's real niceness, scheduling policy and
autogroup (read from ``/proc``, not from our own bookkeeping) and the
container's ``HostConfig.CpuShares`` (as the engine reports it) are what
these tests judge.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from scratchd.cli.engines import BuildPriority, backend_factory
from scratchd.config import load_config
from scratchd.pipeline.plan import Box
from scratchd.runner.host import HostBackend
from tests.runner.conftest import run_step

#: The step shell's niceness and a child's, as the kernel reports them (field 19 of stat).
STEP_NICE = (
    'n=$(cut -d" " -f19 /proc/$$/stat); sleep 5 & '
    'echo "nice=$n child=$(cut -d" " -f19 /proc/$!/stat)"; kill $!'
)


@pytest.fixture(params=["bash", "python"])
def python_supervisor(request) -> bool:
    """Both step supervisors (see :mod:`scratchd.runner.reaper`) lower the priority alike."""
    return request.param == "python"


def niceness_of_a_step(backend) -> str:
    code, lines = run_step(backend, STEP_NICE)
    assert code == 0, lines.of("stderr")
    return lines.of("stdout")[-1]


def test_host_steps_and_their_children_run_niced(make_pipeline_job, python_supervisor):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    b = HostBackend(nice=7, python_supervisor=python_supervisor)
    b.setup(make_pipeline_job())
    try:
        assert niceness_of_a_step(b) == f"nice={ours + 7} child={ours + 7}"
    finally:
        b.teardown()


def test_host_steps_without_nice_keep_the_daemons_priority(make_pipeline_job, python_supervisor):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    b = HostBackend(nice=0, python_supervisor=python_supervisor)
    b.setup(make_pipeline_job())
    try:
        assert niceness_of_a_step(b) == f"nice={ours} child={ours}"
    finally:
        b.teardown()


#: The step shell's scheduling policy and a child's (field 41 of stat; 5 is SCHED_IDLE, 0
#: SCHED_OTHER) and the CPU weight of the step's session (its autogroup's nice).
STEP_POLICY = (
    'p=$(cut -d" " -f41 /proc/$$/stat); sleep 5 & '
    'echo "policy=$p child=$(cut -d" " -f41 /proc/$!/stat) $(cut -d" " -f2- /proc/$$/autogroup)";'
    " kill $!"
)
POLICY = '$(cut -d" " -f41 /proc/$$/stat)'
AUTOGROUPS = Path("/proc/self/autogroup").exists()


def policy_of_a_step(backend, make_pipeline_job) -> str:
    backend.setup(make_pipeline_job())
    try:
        code, lines = run_step(backend, STEP_POLICY)
    finally:
        backend.teardown()
    assert code == 0, lines.of("stderr")
    return lines.of("stdout")[-1]


@pytest.mark.skipif(not AUTOGROUPS, reason="kernel without autogroups")
def test_host_steps_run_sched_idle_in_a_niced_autogroup(make_pipeline_job, python_supervisor):
    """Each step is a session of its own, so with autogroups only the session's nice
    weighs against the daemon; under SCHED_IDLE any waking daemon thread preempts it."""
    backend = HostBackend(nice=7, idle=True, python_supervisor=python_supervisor)
    assert policy_of_a_step(backend, make_pipeline_job) == ("policy=5 child=5 nice 7")


@pytest.mark.skipif(not AUTOGROUPS, reason="kernel without autogroups")
def test_host_steps_keep_the_normal_policy_when_idle_is_off(make_pipeline_job, python_supervisor):
    backend = HostBackend(nice=0, idle=False, python_supervisor=python_supervisor)
    assert policy_of_a_step(backend, make_pipeline_job) == ("policy=0 child=0 nice 0")


def test_the_configured_priority_reaches_the_host_step(make_pipeline_job):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    backend = backend_factory({}, priority=lambda: BuildPriority(nice=3, idle=True))("host")
    backend.setup(make_pipeline_job())
    try:
        code, lines = run_step(
            backend, STEP_NICE + '; echo "policy=$(cut -d" " -f41 /proc/$$/stat)"'
        )
    finally:
        backend.teardown()
    assert code == 0, lines.of("stderr")
    assert lines.of("stdout")[-2:] == [f"nice={ours + 3} child={ours + 3}", "policy=5"]


def test_docker_containers_get_the_configured_cpu_shares(
    new_docker_backend, make_pipeline_job, busybox_box, docker_client, docker_labels
):
    b = new_docker_backend(cpu_shares=256)
    b.setup(make_pipeline_job(box=Box(id=busybox_box)))
    containers = docker_client.containers.list(
        filters={"label": [f"{k}={v}" for k, v in docker_labels.items()]}
    )
    assert containers
    for container in containers:
        container.reload()
        assert container.attrs["HostConfig"]["CpuShares"] == 256


def test_priorities_are_configurable_with_safe_defaults(tmp_path: Path):
    path = tmp_path / "scratchd.toml"
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\n')
    daemon = load_config(path).daemon
    assert (daemon.build_nice, daemon.build_cpu_shares, daemon.build_sched_idle) == (10, 512, True)
    path.write_text(
        f'[daemon]\nstate_dir = "{tmp_path}"\nbuild_nice = 3\nbuild_cpu_shares = 100\n'
        "build_sched_idle = false\n"
    )
    daemon = load_config(path).daemon
    assert (daemon.build_nice, daemon.build_cpu_shares, daemon.build_sched_idle) == (3, 100, False)
