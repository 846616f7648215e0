"""RemoteEngineBackend against real engines in network namespaces, over TLS."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from scratchd.errors import BackendError, BuildCancelled
from scratchd.pipeline.plan import Box
from scratchd.runner.backend import StepCommand
from scratchd.runner.docker_backend import BUILD_LABEL, MANAGED_LABEL
from scratchd.runner.engines import ENGINE_LABEL, SPARES, probe, remove_orphans
from scratchd.runner.remote_engine import RemoteEngineBackend
from tests.runner.conftest import Lines, pipeline_job, run_step
from tests.support.engines import wait_until


@pytest.fixture
def make_backend():
    made = []

    def make(endpoint, **kw):
        kw.setdefault("kill_grace", 1.0)
        kw.setdefault("drain_timeout", 1.0)
        made.append(RemoteEngineBackend(endpoint, **kw))
        return made[-1]

    yield make
    for backend in made:
        backend.teardown()


def job(base, box, repo="cities", build="7", **kw):
    return pipeline_job(base, box=Box(id=box), log_fields={"REPO": repo, "BUILD_ID": build}, **kw)


def scratchd_containers(host) -> list[dict]:
    client = host.client()
    try:
        return client.api.containers(all=True, filters={"label": MANAGED_LABEL})
    finally:
        client.close()


def test_source_goes_up_output_comes_back_cache_is_a_volume(
    engines, make_backend, busybox_box, tmp_path, docker_client
):
    host = engines[0]
    first = job(tmp_path / "one", busybox_box)
    (first.dirs.root / "sub").mkdir()
    (first.dirs.root / "sub" / "in.txt").write_text("from the controller\n")
    os.symlink("sub/in.txt", first.dirs.root / "link")
    backend = make_backend(host.endpoint())
    backend.setup(first)
    (container,) = scratchd_containers(host)
    assert container["Labels"][BUILD_LABEL] == "7"
    assert container["Labels"][ENGINE_LABEL] == host.name
    script = (
        "set -e\ncat sub/in.txt\nreadlink link\n"
        'echo built > "$WERCKER_OUTPUT_DIR/artifact"\nmkdir "$WERCKER_OUTPUT_DIR/d"\n'
        'ln -s ../artifact "$WERCKER_OUTPUT_DIR/d/up"\n'
        'echo warm > "$WERCKER_CACHE_DIR/c"\n'
    )
    code, lines = run_step(backend, script)
    assert (code, lines.of("stdout")) == (0, ["from the controller", "sub/in.txt"])
    backend.collect()
    backend.teardown()
    assert backend.endpoint.settle(30)
    assert (first.dirs.output / "artifact").read_text() == "built\n"
    assert os.readlink(first.dirs.output / "d" / "up") == "../artifact"
    assert not any(first.dirs.cache.iterdir()), "the cache lives on the engine, not here"
    assert scratchd_containers(host) == []
    # The same repository on the same engine finds its cache again.
    backend = make_backend(host.endpoint())
    backend.setup(job(tmp_path / "two", busybox_box))
    code, lines = run_step(backend, 'cat "$WERCKER_CACHE_DIR/c"')
    assert (code, lines.of("stdout")) == (0, ["warm"])


def test_a_100mb_source_tree_goes_through(engines, make_backend, busybox_box, tmp_path):
    big = job(tmp_path / "big", busybox_box)
    blob = os.urandom(1024 * 1024)
    for i in range(100):
        (big.dirs.root / f"f{i:03d}").write_bytes(blob[i:] + blob[:i])
    backend = make_backend(engines[1].endpoint())
    started = time.monotonic()
    backend.setup(big)
    code, lines = run_step(backend, "du -sk . | cut -f1; ls | wc -l")
    assert code == 0
    kib, count = (int(x) for x in lines.of("stdout"))
    assert count == 100 and kib >= 100 * 1024
    print(f"100 MB setup took {time.monotonic() - started:.1f}s")


def test_cancel_kills_the_remote_step(engines, make_backend, busybox_box, tmp_path):
    backend = make_backend(engines[2].endpoint())
    backend.setup(job(tmp_path / "c", busybox_box))
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    command = StepCommand(name="long", script="echo started\nsleep 300\n")
    with pytest.raises(BuildCancelled):
        backend.run(command, Lines(), cancel)
    procs = backend.container.top(ps_args="-o pid,args")["Processes"]
    assert not any("sleep 300" in " ".join(p) for p in procs)
    backend.teardown()
    assert scratchd_containers(engines[2]) == []


def scratchd_networks(host) -> list[dict]:
    client = host.client()
    try:
        return client.api.networks(filters={"label": MANAGED_LABEL})
    finally:
        client.close()


def test_a_collected_pipeline_is_removed_off_the_slot_and_close_waits_for_it(
    engines, make_backend, busybox_box, tmp_path
):
    host = engines[1]
    endpoint = host.endpoint()
    backend = make_backend(endpoint)
    backend.setup(job(tmp_path / "later", busybox_box))
    (container,) = scratchd_containers(host)
    assert run_step(backend, 'echo out > "$WERCKER_OUTPUT_DIR/o"')[0] == 0
    backend.collect()
    backend.teardown()
    assert backend.container is None and backend.network is None
    endpoint.close()  # the daemon stopping: pending removals finish first
    assert scratchd_containers(host) == [] and scratchd_networks(host) == []
    # The backend can run the next pipeline at once.
    backend.setup(job(tmp_path / "next", busybox_box))
    (second,) = scratchd_containers(host)
    assert second["Id"] != container["Id"]


def test_an_uncollected_pipeline_is_removed_before_teardown_returns(
    engines, make_backend, busybox_box, tmp_path
):
    host = engines[1]
    backend = make_backend(host.endpoint())
    backend.setup(job(tmp_path / "failed", busybox_box))
    assert run_step(backend, "exit 3")[0] == 3  # a failed pipeline is not collected
    backend.teardown()
    assert scratchd_containers(host) == [] and scratchd_networks(host) == []


def test_a_prepared_container_gets_the_source_only_at_setup_or_is_removed(
    engines, make_backend, busybox_box, tmp_path
):
    host = engines[2]
    ready = job(tmp_path / "ready", busybox_box)
    (ready.dirs.root / "in.txt").write_text("late\n")
    backend = make_backend(host.endpoint())
    assert backend.prepare(ready)
    (made,) = scratchd_containers(host)
    assert made["State"] == "running"
    probe_ = backend.container.exec_run(["test", "-e", "/pipeline/source/in.txt"])
    assert probe_.exit_code == 1, "waiting to be spoken to: no source yet"
    backend.setup(ready)
    assert [c["Id"] for c in scratchd_containers(host)] == [made["Id"]], "the same container"
    assert run_step(backend, "cat in.txt")[1].of("stdout") == ["late"]
    backend.teardown()
    # Prepared for one job, set up for another: a new container; never used: removed.
    assert backend.prepare(ready)
    backend.setup(job(tmp_path / "other", busybox_box, build="8"))
    (other,) = scratchd_containers(host)
    assert other["Labels"][BUILD_LABEL] == "8"
    backend.teardown()
    assert backend.prepare(ready)
    backend.teardown()
    assert scratchd_containers(host) == [] and scratchd_networks(host) == []


def test_a_prepared_pipeline_s_source_tar_is_made_while_it_waits(
    engines, make_backend, busybox_box, tmp_path
):
    """The freed slot only sends the tar: the exported tree was read when it was prepared."""
    ready = job(tmp_path / "ready", busybox_box)
    (ready.dirs.root / "in.txt").write_text("as exported\n")
    backend = make_backend(engines[2].endpoint())
    assert backend.prepare(ready)
    (ready.dirs.root / "in.txt").unlink()  # nothing changes an export; if it did, too late
    backend.setup(ready)
    assert run_step(backend, "cat in.txt")[1].of("stdout") == ["as exported"]
    backend.teardown()


def test_the_builds_client_gets_its_spare_connections_back_after_each_hijack(
    engines, make_backend, busybox_box, tmp_path
):
    """An attach or a step's exec keeps its connection; the next call must not wait for TLS."""
    endpoint = engines[0].endpoint()
    endpoint.keep_warm()  # as the health thread does when the engine answers
    wait_until(lambda: endpoint.idle_connections() == SPARES, 60, "the spares opened")
    backend = make_backend(endpoint)
    pipeline = job(tmp_path / "w", busybox_box)
    backend.setup(pipeline)  # the source's attach: one connection gone
    wait_until(lambda: endpoint.idle_connections() == SPARES, 60, "spares after the upload")
    assert run_step(backend, 'echo o > "$WERCKER_OUTPUT_DIR/o"')[0] == 0  # the exec's
    wait_until(lambda: endpoint.idle_connections() == SPARES, 60, "spares after the step")
    backend.collect()  # the output's attach
    wait_until(lambda: endpoint.idle_connections() == SPARES, 60, "spares after the output")
    assert (pipeline.dirs.output / "o").read_text() == "o\n"
    backend.teardown()
    endpoint.close()


def test_a_waiting_build_makes_its_container_once_the_slot_holders_are_set_up(
    engines, make_backend, busybox_box, tmp_path
):
    host = engines[1]
    endpoint = host.endpoint()
    waiting = make_backend(endpoint)
    prepared = threading.Event()

    def prepare() -> None:
        assert waiting.prepare(job(tmp_path / "w", busybox_box))
        prepared.set()

    with endpoint.setting_up():  # what setup() holds for a pipeline that has its slot
        thread = threading.Thread(target=prepare)
        thread.start()
        assert not prepared.wait(1.5)
        assert scratchd_containers(host) == [], "nothing made while a slot holder sets up"
    assert prepared.wait(60)
    thread.join(10)
    (made,) = scratchd_containers(host)
    assert made["State"] == "running"
    waiting.teardown()
    assert scratchd_containers(host) == []


def test_a_pipeline_with_its_slot_holds_the_setup_gate_until_its_first_step_runs(
    engines, make_backend, busybox_box, tmp_path
):
    endpoint = engines[2].endpoint()
    backend = make_backend(endpoint)
    backend.setup(job(tmp_path / "g", busybox_box))
    assert not endpoint.wait_for_setups(0), "set up, no step yet: the engine is still its"
    assert run_step(backend, "true")[0] == 0
    assert endpoint.wait_for_setups(0)
    backend.teardown()
    # A prepared one holds it from its upload on; a teardown without a step lets go too.
    assert backend.prepare(job(tmp_path / "p", busybox_box))
    assert endpoint.wait_for_setups(0), "a head start holds no gate"
    backend.setup(job(tmp_path / "p", busybox_box))
    assert not endpoint.wait_for_setups(0)
    backend.teardown()
    assert endpoint.wait_for_setups(0)


def test_a_finished_pipeline_is_removed_after_the_pipelines_being_set_up(
    engines, make_backend, busybox_box, tmp_path
):
    host = engines[0]
    endpoint = host.endpoint()
    backend = make_backend(endpoint)
    backend.setup(job(tmp_path / "done", busybox_box))
    assert run_step(backend, "true")[0] == 0
    backend.collect()
    with endpoint.setting_up():  # another build's pipeline starting on this engine
        backend.teardown()
        assert not endpoint.settle(1.5)
        assert len(scratchd_containers(host)) == 1, "its removal waits"
    assert endpoint.settle(60)
    assert scratchd_containers(host) == [] and scratchd_networks(host) == []


def test_orphans_are_removed_unless_their_build_runs(engines, busybox_box, tmp_path):
    host = engines[0]
    left = [RemoteEngineBackend(host.endpoint()) for _ in range(2)]
    for i, backend in enumerate(left):
        backend.setup(job(tmp_path / f"o{i}", busybox_box, build=str(100 + i)))
    assert remove_orphans(host.endpoint(), running={"101"}) == 1
    (kept,) = scratchd_containers(host)
    assert kept["Labels"][BUILD_LABEL] == "101"
    assert remove_orphans(host.endpoint(), running=set()) == 1
    assert scratchd_containers(host) == []
    for backend in left:
        backend.teardown()  # already gone: teardown stays quiet and idempotent


def test_an_engine_gone_since_its_last_pipeline_fails_setup_as_an_engine_error(
    engines, make_backend, busybox_box, tmp_path
):
    """Pipelines ask no ping of their engine: the first real call finds it gone."""
    host = engines[2]
    endpoint = host.endpoint()
    before = make_backend(endpoint)
    before.setup(job(tmp_path / "before", busybox_box))
    before.teardown()  # the shared client and its connections stay open
    host.stop()
    try:
        with pytest.raises(BackendError, match=f"{host.name} .*create network failed"):
            make_backend(endpoint).setup(job(tmp_path / "after", busybox_box))
    finally:
        host.start()
    assert scratchd_containers(host) == []


def test_probe_reports_facts_and_down_engines(engines):
    facts = probe(engines[0].endpoint())
    assert facts.version and facts.cpus >= 1 and facts.memory > 0
    from scratchd.runner.engines import EngineEndpoint

    dead = EngineEndpoint("gone", "tcp://127.0.0.1:1")
    with pytest.raises(BackendError, match="engine gone"):
        probe(dead, timeout=2)


def host_tools_box(host, name: str, tools: tuple[str, ...], broken_tar: bool = False) -> str:
    """A box of the host's dash, sleep, mkdir, chmod, ``tools`` and their libraries.

    ``broken_tar`` adds a ``tar`` that always fails. (A busybox box cannot
    lose an applet: its shell finds it anyway.)
    """
    import io
    import shutil
    import subprocess
    import tarfile

    files = {"bin/sh": shutil.which("dash")}
    files |= {f"bin/{t}": shutil.which(t) for t in ("sleep", "mkdir", "chmod", *tools)}
    libs = subprocess.run(["ldd", *files.values()], capture_output=True, text=True).stdout
    files |= {p.lstrip("/"): p for p in libs.split() if p.startswith("/lib")}
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", dereference=True) as tar:
        for inside, outside in files.items():
            tar.add(outside, inside)
        if broken_tar:
            script = b"#!/bin/sh\necho 'tar: this tar is broken' >&2\nexit 2\n"
            info = tarfile.TarInfo("bin/tar")
            info.size, info.mode = len(script), 0o755
            tar.addfile(info, io.BytesIO(script))
    client = host.client()
    try:
        client.api.import_image_from_data(data.getvalue(), repository=name, tag="1")
    finally:
        client.close()
    return f"{name}:1"


@pytest.mark.parametrize("broken_tar", [False, True], ids=["no-tar", "broken-tar"])
def test_a_box_without_a_working_tar_moves_files_by_the_archive_api(
    engines, make_backend, tmp_path, caplog, broken_tar
):
    host = engines[1]
    tools = ("head", "cat") if broken_tar else ()
    box = host_tools_box(host, f"scratchd-test/tarless-{int(broken_tar)}", tools, broken_tar)
    pipeline = job(tmp_path / "t", box)
    (pipeline.dirs.root / "in.txt").write_text("source\n")
    backend = make_backend(host.endpoint())
    with caplog.at_level("INFO", logger="scratchd.runner.remote_engine"):
        backend.setup(pipeline)
    assert "files go by the archive API" in caplog.text
    code, lines = run_step(backend, 'read -r line < in.txt; echo "$line" > "$WERCKER_OUTPUT_DIR/o"')
    assert code == 0, lines
    backend.collect()
    backend.teardown()
    assert (pipeline.dirs.output / "o").read_text() == "source\n"


def test_a_busybox_box_streams_the_files_through_its_main_process(
    engines, make_backend, busybox_box, tmp_path, caplog
):
    """The source goes in and the output comes out without the archive API.

    The output is larger than the buffers between the engine and us: a
    connection left open and unread would stall it.
    """
    pipeline = job(tmp_path / "s", busybox_box)
    (pipeline.dirs.root / ("long-" + "n" * 150)).write_text("a long name\n")
    backend = make_backend(engines[0].endpoint())
    script = (
        'cp long-* "$WERCKER_OUTPUT_DIR/"; echo r > "$WERCKER_REPORT_DIR/r"\n'
        'head -c 12000000 /dev/urandom > "$WERCKER_OUTPUT_DIR/big"\n'
        'md5sum "$WERCKER_OUTPUT_DIR/big" | cut -d" " -f1\n'
    )
    with caplog.at_level("INFO", logger="scratchd.runner.remote_engine"):
        backend.setup(pipeline)
        code, lines = run_step(backend, script)
        assert code == 0
        backend.collect()
    assert "archive API" not in caplog.text
    assert (pipeline.dirs.output / ("long-" + "n" * 150)).read_text() == "a long name\n"
    assert (pipeline.dirs.report / "r").read_text() == "r\n"
    big = (pipeline.dirs.output / "big").read_bytes()
    assert hashlib.md5(big).hexdigest() == lines.of("stdout")[0]


def test_a_box_whose_dd_cannot_count_bytes_takes_the_source_with_head(
    engines, make_backend, tmp_path, caplog
):
    """No dd (or one without ``iflag=count_bytes``): ``head -c`` ends the tar for tar.

    The source is larger than a pipe's buffer, and the output comes back on
    the same stdin: head must stop exactly at the tar's end.
    """
    host = engines[2]
    box = host_tools_box(host, "scratchd-test/no-dd", ("tar", "head", "cat", "md5sum"))
    pipeline = job(tmp_path / "h", box)
    blob = os.urandom(3_000_000)
    (pipeline.dirs.root / "blob").write_bytes(blob)
    backend = make_backend(host.endpoint())
    with caplog.at_level("INFO", logger="scratchd.runner.remote_engine"):
        backend.setup(pipeline)
        code, lines = run_step(backend, 'command -v dd || md5sum blob > "$WERCKER_OUTPUT_DIR/sum"')
        assert code == 0, lines
        backend.collect()
    backend.teardown()
    assert "archive API" not in caplog.text
    assert (pipeline.dirs.output / "sum").read_text().split()[0] == hashlib.md5(blob).hexdigest()
