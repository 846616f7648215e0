"""The Docker backend: one container per pipeline, steps exec'd into it in order.

Setup creates a user-defined network for the run, starts the ``services``
on it (reachable by name), then starts the pipeline container from the
``box`` with the job's directories bind-mounted under ``/pipeline``. Its
main process is a tiny shell loop that only keeps it alive; every step is
an ``exec`` of a script file copied into the container, so files written by
one step are there for the next (shell variables are not, as in wercker).

Processes a step starts in the background keep running until teardown,
as they did in wercker (a step may start a database for the next one).
A timeout or cancel ends *everything* in the container except its main
process (``kill -1`` from a fresh exec: TERM, then KILL after the grace
period), so nothing of a stopped step is left running. Teardown removes
containers and network, whatever state setup reached.

The container runs as root, so before it goes, teardown hands the
bind-mounted directories back to the daemon's user (``chown -R``) so the
daemon can clean them up.
"""

from __future__ import annotations

import io
import logging
import os
import posixpath
import queue
import re
import secrets
import tarfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager

import docker
import docker.errors
import requests

from scratchd.errors import BackendError, PipelineError
from scratchd.models import BoxDigest
from scratchd.redact import Redactor
from scratchd.runner.backend import LineSink, PipelineJob, StepCommand
from scratchd.runner.docker_images import ensure_image
from scratchd.runner.docker_services import command_args, exposed_ports, service_alias
from scratchd.runner.docker_services import service_env as link_vars
from scratchd.runner.stepwatch import LineSplitter, StepClock

log = logging.getLogger(__name__)

#: Label on everything this backend creates (plus the run id and pipeline).
MANAGED_LABEL = "org.scratchd.managed"
#: The build number, so orphan cleanup can tell a running build's containers from a crash's.
BUILD_LABEL = "org.scratchd.build-id"
PIPELINE_DIR = "/pipeline"
MOUNTS = {"root": "source", "output": "output", "cache": "cache", "report": "report"}
_KEEPALIVE = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done"
# Without a box ``cmd``, scripts run in bash when the box has it (wercker's
# default shell, which real wercker.yml files rely on) and in sh otherwise
# (busybox and alpine boxes); decided inside the exec, so it costs no extra call.
_BASH_OR_SH = ["/bin/sh", "-c", '[ -x /bin/bash ] && exec /bin/bash "$0"; exec /bin/sh "$0"']
_CD_AND_RUN = 'cd "$1" || exit 1; shift; exec "$@"'
_WRITE_CD_RUN = (
    'mkdir -p "${1%/*}" && printf "%s" "$2" > "$1" && chmod 700 "$1" || exit 1; '
    'cd "$3" || exit 1; shift 3; exec "$@"'
)
_MAX_INLINE_SCRIPT = 100 * 1024
_ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException)


class DockerBackend:
    """Runs a pipeline in a container of its box. See the module docstring."""

    def __init__(
        self,
        client_factory: Callable[[], docker.DockerClient] | None = None,
        *,
        base_url: str | None = None,
        labels: Mapping[str, str] | None = None,
        kill_grace: float = 5.0,
        drain_timeout: float = 2.0,
        owner: tuple[int, int] | None = None,
        api_timeout: float = 120,
        cpu_shares: int | None = None,
        owns_client: bool = True,
    ) -> None:
        # Relative CPU weight of the build's containers (the engine's default is
        # 1024): below the daemon's, so busy builds never delay the next commit.
        self._cpu_shares = cpu_shares
        self._factory = client_factory or _default_factory(base_url, api_timeout)
        self._where = base_url or os.environ.get("DOCKER_HOST", "the default socket")
        self._labels = {MANAGED_LABEL: "true", **(labels or {})}
        self._kill_grace = kill_grace
        self._drain_timeout = drain_timeout
        self._owner = owner or (os.getuid(), os.getgid())
        self._owns_client = owns_client  # False: the factory hands out a shared client
        self._reset()

    def _reset(self) -> None:
        self._client: docker.DockerClient | None = None
        self._job: PipelineJob | None = None
        self._redactor = Redactor()
        self._network: str | None = None
        self._containers: list[str] = []  # services first, pipeline container last
        self._container: str | None = None
        self._shell: list[str] = list(_BASH_OR_SH)
        self._service_env: dict[str, str] = {}
        self._boxes: list[BoxDigest] = []
        self._count = 0

    # -- the Backend protocol ----------------------------------------------

    def setup(self, job: PipelineJob) -> None:
        """Network, services, pipeline container. Whatever was created is recorded for teardown."""
        self.teardown()  # a backend reused without teardown must not leak the old run
        if job.box is None:
            raise PipelineError(f"pipeline {job.name!r} has no box: the docker executor needs one")
        self._job = job
        boxes = (job.box, *job.services)
        self._redactor = Redactor([*job.secrets, *(b.password for b in boxes)])
        self._client = self._connect()
        base = f"scratchd-{_slug(job.run_id)}-{_slug(job.name)}-{secrets.token_hex(3)}"
        labels = {
            **self._labels,
            "org.scratchd.run-id": job.run_id,
            "org.scratchd.pipeline": job.name,
            BUILD_LABEL: job.log_fields.get("BUILD_ID", ""),
        }
        with self._engine("create network"):
            self._network = self._api.create_network(base, driver="bridge", labels=labels)["Id"]
        for service in job.services:
            self._start_service(service, base, labels)
        self._start_pipeline_container(job, base, labels)
        log.info("pipeline container %s ready", base, extra=self._fields())

    def box_images(self) -> tuple[BoxDigest, ...]:
        """The box, then each service, as the engine resolved them during setup."""
        return tuple(self._boxes)

    def env_paths(self) -> Mapping[str, str]:
        """Container paths: the directories as a step inside the box sees them."""
        job = self._require()
        rel = (
            job.dirs.source.relative_to(job.dirs.root) if job.dirs.source != job.dirs.root else None
        )
        source = f"{PIPELINE_DIR}/source"
        return {
            "WERCKER_ROOT": source,
            "WERCKER_SOURCE_DIR": posixpath.join(source, rel.as_posix()) if rel else source,
            "WERCKER_OUTPUT_DIR": f"{PIPELINE_DIR}/output",
            "WERCKER_CACHE_DIR": f"{PIPELINE_DIR}/cache",
            "WERCKER_REPORT_DIR": f"{PIPELINE_DIR}/report",
            "WERCKER_PIPELINE_DIR": PIPELINE_DIR,
        }

    def service_env(self) -> Mapping[str, str]:
        """The services' link variables, as every step's environment has them."""
        return dict(self._service_env)

    def run(self, command: StepCommand, on_line: LineSink, cancel: threading.Event) -> int:
        """Exec one step in the pipeline container; stream its output; return its exit code."""
        job = self._require()
        paths = self.env_paths()
        workdir = posixpath.normpath(posixpath.join(paths["WERCKER_SOURCE_DIR"], command.cwd))
        env = {**job.env, **paths, **self._service_env, **command.env}
        cmd = self._step_argv(command, workdir)
        with self._engine(f"start step {command.name!r}"):
            exec_id = self._api.exec_create(self._container, cmd, environment=env)["Id"]
            stream = self._api.exec_start(exec_id, stream=True, demux=True)
        log.debug("exec step", extra=self._fields(STEP=command.name))
        clock = StepClock(
            command.name, command.command_timeout, command.no_response_timeout, cancel
        )
        self._pump(exec_id, _reader(stream), on_line, clock)
        return self._exit_code(exec_id)

    def teardown(self) -> None:
        """Remove everything setup created. Idempotent, safe after a failed setup.

        Failures are logged, not raised (teardown runs in ``finally`` blocks
        and must not hide the build's own error); what could not be removed
        stays recorded, so calling teardown again retries it.
        """
        if self._client is None:
            self._reset()
            return
        if self._container is not None:
            self._give_back_files()
        left = [cid for cid in self._containers if not self._remove(cid)]
        if self._network is not None and not left and self._remove_network(self._network):
            self._network = None
        self._containers = left
        if left or self._network is not None:
            log.error(
                "docker teardown left %d container(s) behind", len(left), extra=self._fields()
            )
            return
        client = self._client
        self._reset()
        if self._owns_client:
            client.close()

    # -- for internal/docker-push and internal/docker-build ----------------

    @property
    def client(self) -> docker.DockerClient | None:
        """The engine client of the current run (None outside setup/teardown)."""
        return self._client

    @property
    def container(self):
        """The pipeline container (a docker SDK Container), for steps that commit it."""
        if self._client is None or self._container is None:
            return None
        with self._engine("inspect pipeline container"):
            return self._client.containers.get(self._container)

    @property
    def network(self) -> str | None:
        return self._network

    # -- setup -------------------------------------------------------------

    @property
    def _api(self) -> docker.APIClient:
        assert self._client is not None
        return self._client.api

    def _connect(self) -> docker.DockerClient:
        try:
            client = self._factory()
            client.ping()
        except _ENGINE_ERRORS as exc:
            raise BackendError(f"docker engine at {self._where} is not reachable: {exc}") from None
        return client

    def _start_service(self, box, base: str, labels: dict) -> None:
        alias = service_alias(box)
        image, digest = ensure_image(self._api, box, self._redactor)
        self._boxes.append(digest)
        name = f"{base}-{_slug(alias)}"
        with self._engine(f"start service {alias!r}"):
            cid = self._api.create_container(
                image,
                command=command_args(box.cmd, what=f"service {alias!r} cmd"),
                entrypoint=command_args(box.entrypoint, what=f"service {alias!r} entrypoint"),
                environment=dict(box.env),
                ports=[(p, proto) for p, proto in exposed_ports(box)] or None,
                name=name,
                labels={**labels, "org.scratchd.service": alias},
                host_config=self._api.create_host_config(
                    network_mode=base, cpu_shares=self._cpu_shares
                ),
                networking_config=self._api.create_networking_config(
                    {base: self._api.create_endpoint_config(aliases=[alias])}
                ),
                use_config_proxy=False,
            )["Id"]
            self._containers.append(cid)
            self._api.start(cid)
            inspected = self._api.inspect_container(cid)
        self._service_env.update(link_vars(inspected, base, alias, base))

    def _start_pipeline_container(self, job: PipelineJob, base: str, labels: dict) -> None:
        assert job.box is not None
        image, digest = ensure_image(self._api, job.box, self._redactor)
        self._boxes.insert(0, digest)  # the pipeline's box first, then its services
        self._shell = command_args(job.box.cmd) or list(_BASH_OR_SH)
        with self._engine("start pipeline container"):
            cid = self._api.create_container(
                image,
                **self._main_process(),
                environment=dict(job.box.env),
                user="0",
                name=base,
                labels=labels,
                host_config=self._api.create_host_config(
                    **self._host_options(job), network_mode=base, cpu_shares=self._cpu_shares
                ),
                use_config_proxy=False,
            )["Id"]
            self._containers.append(cid)
        self._start(cid, job)
        self._container = cid

    def _host_options(self, job: PipelineJob) -> dict:
        """The job's host directories, bind-mounted: the engine shares this machine's disk."""
        binds = {
            str(getattr(job.dirs, field)): {"bind": f"{PIPELINE_DIR}/{name}", "mode": "rw"}
            for field, name in MOUNTS.items()
        }
        return {"binds": binds}

    def _main_process(self) -> dict:
        """``create_container`` arguments of the pipeline container's main process.

        Here it only keeps the container alive; engines that do not share
        the disk use it to receive the source and send the output back.
        """
        return {"command": ["-c", _KEEPALIVE], "entrypoint": ["/bin/sh"]}

    def _start(self, cid: str, job: PipelineJob) -> None:
        """Start the pipeline container (engines that do not share the disk fill it here)."""
        with self._engine("start pipeline container"):
            self._api.start(cid)

    # -- steps -------------------------------------------------------------

    def _step_argv(self, command: StepCommand, workdir: str) -> list[str]:
        """The exec's argv: write the script to a file, cd, run it.

        The script travels as an argument of the exec itself, which costs
        nothing extra; copying it in with the archive API takes a few hundred
        milliseconds per step, so that is only the fallback for scripts too
        long for one argument (Linux caps a single argument at 128 KiB).
        """
        self._count += 1
        path = f"{PIPELINE_DIR}/steps/step-{self._count:03d}"
        run = [path] if command.script.startswith("#!") else [*self._shell, path]
        if len(command.script.encode()) < _MAX_INLINE_SCRIPT:
            return ["/bin/sh", "-c", _WRITE_CD_RUN, "step", path, command.script, workdir, *run]
        self._upload_script(command, path)
        return ["/bin/sh", "-c", _CD_AND_RUN, "step", workdir, *run]

    def _upload_script(self, command: StepCommand, path: str) -> None:
        """Copy a long script into the container with the archive API."""
        name = path.removeprefix(f"{PIPELINE_DIR}/")
        data = command.script.encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            folder = tarfile.TarInfo("steps")
            folder.type, folder.mode = tarfile.DIRTYPE, 0o700
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o700, int(time.time())
            tar.addfile(folder)
            tar.addfile(info, io.BytesIO(data))
        with self._engine(f"copy script of step {command.name!r}"):
            # /pipeline always exists (it holds the mounts), unlike /tmp in some boxes.
            self._api.put_archive(self._container, PIPELINE_DIR, buf.getvalue())

    def _pump(self, exec_id: str, events: queue.Queue, on_line: LineSink, clock: StepClock) -> None:
        """Deliver output until the exec's stream ends; kill the step if the clock says so."""
        splitters = {"stdout": LineSplitter(), "stderr": LineSplitter()}
        exited_at: float | None = None
        next_check = time.monotonic() + 0.25
        while True:
            reason = clock.stop_reason()
            if reason is not None:
                self._kill_everything()
                _drain(events, splitters, on_line, self._drain_timeout)
                raise reason
            try:
                kind, data = events.get(timeout=min(0.1, clock.remaining() + 0.01))
            except queue.Empty:
                kind, data = "idle", b""
            if kind == "end":
                break
            if kind == "error":
                raise BackendError(self._redactor.redact(f"docker engine: step output: {data}"))
            if kind in splitters and data:
                clock.output_seen()
                for line in splitters[kind].feed(data):
                    on_line(kind, line)
            now = time.monotonic()
            if exited_at is None and now >= next_check:
                next_check = now + 0.25
                exited_at = None if self._exec_running(exec_id) else now
            if exited_at is not None and now - exited_at > self._drain_timeout:
                break  # a background process still holds the output open
        for kind, splitter in splitters.items():
            for line in splitter.flush():
                on_line(kind, line)

    def _exec_running(self, exec_id: str) -> bool:
        with self._engine("inspect step"):
            return bool(self._api.exec_inspect(exec_id).get("Running"))

    def _exit_code(self, exec_id: str) -> int:
        deadline = time.monotonic() + 10
        with self._engine("inspect step"):
            while True:
                info = self._api.exec_inspect(exec_id)
                if not info.get("Running") and info.get("ExitCode") is not None:
                    return int(info["ExitCode"])
                if time.monotonic() > deadline:
                    raise BackendError("docker engine never reported the step's exit code")
                time.sleep(0.05)

    def _kill_everything(self) -> None:
        """End every process in the pipeline container but its keep-alive main process."""
        script = (
            f"trap '' TERM; kill -s TERM -1 2>/dev/null; sleep {self._kill_grace:g}; "
            "kill -s KILL -1 2>/dev/null; exit 0"
        )
        self._exec_wait(["/bin/sh", "-c", script], "stop the step")

    def _give_back_files(self) -> None:
        """chown the bind-mounted dirs to the daemon's user, so it can delete them later."""
        if self._owner == (0, 0):
            return
        uid, gid = self._owner
        targets = [f"{PIPELINE_DIR}/{name}" for name in MOUNTS.values()]
        try:
            self._exec_wait(["chown", "-R", f"{uid}:{gid}", *targets], "hand back files")
        except BackendError as exc:
            log.warning("%s", exc, extra=self._fields())

    def _exec_wait(self, cmd: list[str], what: str) -> None:
        with self._engine(what):
            exec_id = self._api.exec_create(self._container, cmd, user="0")["Id"]
            self._api.exec_start(exec_id)

    # -- teardown ----------------------------------------------------------

    def _remove(self, cid: str) -> bool:
        try:
            self._api.remove_container(cid, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except _ENGINE_ERRORS as exc:
            log.warning("cannot remove container %s: %s", cid[:12], exc, extra=self._fields())
            return False
        if cid == self._container:
            self._container = None
        return True

    def _remove_network(self, net: str) -> bool:
        try:
            self._api.remove_network(net)
        except docker.errors.NotFound:
            pass
        except _ENGINE_ERRORS as exc:
            log.warning("cannot remove network %s: %s", net[:12], exc, extra=self._fields())
            return False
        return True

    # -- helpers -----------------------------------------------------------

    def _require(self) -> PipelineJob:
        if self._job is None or self._container is None:
            raise BackendError("docker backend used before setup()")
        return self._job

    @contextmanager
    def _engine(self, what: str) -> Iterator[None]:
        """Turn any engine failure into a one-line BackendError with secrets masked."""
        try:
            yield
        except _ENGINE_ERRORS as exc:
            message = f"docker engine at {self._where}: {what} failed: {exc}"
            raise BackendError(self._redactor.redact(message)) from None

    def _fields(self, **more: str) -> dict:
        return self._job.journal_fields(**more) if self._job else dict(more)


def _reader(stream) -> queue.Queue:
    """Read an exec's demuxed output in a thread; ``("end", b"")`` marks its end."""
    events: queue.Queue = queue.Queue()

    def pump() -> None:
        try:
            for out, err in stream:
                if out:
                    events.put(("stdout", out))
                if err:
                    events.put(("stderr", err))
        except Exception as exc:  # the engine went away mid-step
            events.put(("error", exc))
        events.put(("end", b""))

    threading.Thread(target=pump, name="scratchd-exec-output", daemon=True).start()
    return events


def _drain(events: queue.Queue, splitters: dict, on_line: LineSink, timeout: float) -> None:
    """After a kill, deliver the output that is still on its way, for at most ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            kind, data = events.get(timeout=left)
        except queue.Empty:
            break
        if kind in ("end", "error"):
            break
        for line in splitters[kind].feed(data):
            on_line(kind, line)
    for kind, splitter in splitters.items():
        for line in splitter.flush():
            on_line(kind, line)


def _default_factory(base_url: str | None, timeout: float) -> Callable[[], docker.DockerClient]:
    if base_url:
        return lambda: docker.DockerClient(base_url=base_url, timeout=timeout)
    return lambda: docker.from_env(timeout=timeout)


def _slug(text: str) -> str:
    """A piece of a container name: ``[a-zA-Z0-9_.-]``, at most 40 characters."""
    return re.sub(r"[^a-zA-Z0-9_.-]+", "-", text).strip("-.")[:40] or "x"
