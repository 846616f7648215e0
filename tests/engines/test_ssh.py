"""ssh:// engines: one tunnel per engine, through a real sshd in the engine's namespace."""

from __future__ import annotations

import subprocess

import pytest

from scratchd.errors import BackendError
from scratchd.runner.engines import EngineEndpoint, probe
from scratchd.runner.remote_engine import RemoteEngineBackend
from scratchd.runner.ssh_tunnel import SshTunnel
from tests.engines.test_remote_backend import job
from tests.runner.conftest import run_step


def ssh_processes(target: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.startswith("ssh -N") and target in line]


def test_a_pipeline_through_one_ssh_tunnel(engines, busybox_box, tmp_path):
    host = engines[0]
    with host.sshd() as (identity, known_hosts):
        url = f"ssh://root@{host.addr}{host.socket}"
        tunnel = SshTunnel(url, tmp_path / "t", identity=identity, known_hosts=known_hosts)
        endpoint = EngineEndpoint("s1", url, tunnel=tunnel)
        try:
            assert probe(endpoint).cpus >= 1
            backend = RemoteEngineBackend(endpoint, kill_grace=1.0, drain_timeout=1.0)
            pipeline = job(tmp_path / "p", busybox_box)
            (pipeline.dirs.root / "in").write_text("over ssh\n")
            backend.setup(pipeline)
            for _ in range(3):
                code, lines = run_step(backend, "cat in; cp in $WERCKER_OUTPUT_DIR/out")
                assert (code, lines.of("stdout")) == (0, ["over ssh"])
            backend.collect()
            backend.teardown()
            assert (pipeline.dirs.output / "out").read_text() == "over ssh\n"
            # Dozens of API calls, one ssh process (the SDK's ssh transport runs one per call).
            assert len(ssh_processes(host.addr)) == 1
        finally:
            tunnel.close()
        assert ssh_processes(host.addr) == []


def test_an_unknown_host_key_is_refused(engines, tmp_path):
    host = engines[1]
    with host.sshd() as (identity, _known):
        (tmp_path / "empty").write_text("")
        url = f"ssh://root@{host.addr}{host.socket}"
        tunnel = SshTunnel(url, tmp_path / "t", identity=identity, known_hosts=tmp_path / "empty")
        with pytest.raises(BackendError, match="ssh tunnel to root@"):
            tunnel.ensure()
