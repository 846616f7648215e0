"""Builds run below the daemon's CPU priority: niced host steps, lighter docker containers.

Busy builds on both cores must never delay the control loop noticing the
next commit, so a step process's real niceness (read from ``/proc``, not
from our own bookkeeping) and the container's ``HostConfig.CpuShares`` (as
the engine reports it) are what these tests judge.
"""

from __future__ import annotations

import os
from pathlib import Path

from scratchd.config import load_config
from scratchd.pipeline.plan import Box
from scratchd.runner.host import HostBackend
from tests.runner.conftest import run_step

#: The step shell's niceness and a child's, as the kernel reports them (field 19 of stat).
STEP_NICE = (
    'n=$(cut -d" " -f19 /proc/$$/stat); sleep 5 & '
    'echo "nice=$n child=$(cut -d" " -f19 /proc/$!/stat)"; kill $!'
)


def niceness_of_a_step(backend) -> str:
    code, lines = run_step(backend, STEP_NICE)
    assert code == 0, lines.of("stderr")
    return lines.of("stdout")[-1]


def test_host_steps_and_their_children_run_niced(make_pipeline_job):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    b = HostBackend(nice=7)
    b.setup(make_pipeline_job())
    try:
        assert niceness_of_a_step(b) == f"nice={ours + 7} child={ours + 7}"
    finally:
        b.teardown()


def test_host_steps_without_nice_keep_the_daemons_priority(make_pipeline_job):
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    b = HostBackend(nice=0)
    b.setup(make_pipeline_job())
    try:
        assert niceness_of_a_step(b) == f"nice={ours} child={ours}"
    finally:
        b.teardown()


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
    assert daemon.build_nice == 10 and daemon.build_cpu_shares == 512
    path.write_text(f'[daemon]\nstate_dir = "{tmp_path}"\nbuild_nice = 3\nbuild_cpu_shares = 100\n')
    daemon = load_config(path).daemon
    assert daemon.build_nice == 3 and daemon.build_cpu_shares == 100
