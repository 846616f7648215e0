"""The remote-engine backend: the docker backend, on an engine that does not share our disk.

Everything about containers, steps, services, timeouts and teardown is the
:class:`~scratchd.runner.docker_backend.DockerBackend`'s; only the files
differ. Bind mounts would name directories on the *engine's* host, so:

- the source goes in as one tar of the exported tree, written to the
  pipeline container's main process (:data:`MAIN`) through an attach
  connection as the container starts, and unpacked there by the box's
  ``tar``, streamed from a temp file so a large tree never sits in memory;
- when the pipeline's steps are done (:meth:`collect`) the main process is
  told (on a new attach connection) to write a tar of the output and report
  dirs, so the controller bakes and pushes the image and registry
  credentials never leave it;
- after :meth:`collect` the container has nothing left to do: :meth:`teardown`
  hands its removal to the engine's remover thread
  (:meth:`~scratchd.runner.engines.EngineEndpoint.remove_later`), so the
  build gives its slot back a quarter second sooner; any other end (a failed
  step, a cancel, an error) removes it at once, as the local backend does;
- a build waiting for a slot on this engine may :meth:`prepare` its first
  pipeline: network and pipeline container made and started (its main
  process only waits to be spoken to), so that when the slot frees
  :meth:`setup` only uploads the source; a prepared container that never
  gets its slot is removed by :meth:`teardown`; it is made only once no
  pipeline that holds a slot is being set up on that engine (from
  :meth:`setup` to its first step's start, see
  :meth:`~scratchd.runner.engines.EngineEndpoint.setting_up`), so the
  running build starts first;
- ``WERCKER_CACHE_DIR`` is a named volume per repository on that engine
  (placement prefers the engine that last built the repository, which keeps
  it warm).

Why not the archive API: each ``put_archive``/``get_archive`` makes the
engine re-execute itself (and each ``exec`` starts runc), a fixed 80-150 ms
per call on a busy engine; the attach connection starts nothing (see
:mod:`scratchd.runner.attach`). A box without ``tar``, ``cat`` and ``dd`` or ``head``,
or whose ``tar`` cannot unpack the source, still works: the main process
says so and the archive API moves the files instead.

An engine that stops answering surfaces as :class:`BackendError`, an
infrastructure error: the build is retried, never recorded as a step failure.
"""

from __future__ import annotations

import contextlib
import logging
import re
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path
from typing import IO

import docker.types

from scratchd.errors import BackendError
from scratchd.runner.attach import Attached
from scratchd.runner.backend import PipelineJob
from scratchd.runner.docker_backend import PIPELINE_DIR, DockerBackend
from scratchd.runner.engines import ENGINE_LABEL, EngineEndpoint

log = logging.getLogger(__name__)

_SPOOL = 8 * 1024 * 1024  # tars up to this size stay in memory
_COPY_BACK = ("output", "report")

#: The pipeline container's main process. It waits for a first line (the
#: controller attaches and says ``hello``: a container started before its
#: build's slot was free must not talk before anyone listens, as there is no
#: log to replay). Then it says ``send``, reads the tar's size and the tar from
#: stdin (``take`` copies exactly that many bytes so tar sees an end; ``cat``
#: drains what a failing tar left, so the next command is not read from the
#: middle of the tar), says ``ready`` or ``failed``, then waits for
#: ``collect``: it writes the tar of the output and report dirs and
#: ``collected <tar's status>`` after it (the controller reads the tar to its
#: end-of-archive, so it never waits for the container to exit), and ends.
#: ``take`` is ``dd`` in 64 KiB blocks where the box's dd counts bytes (GNU,
#: busybox), else ``head -c``: busybox's head copies a byte at a time, 20 to
#: 30 ms of the engine's CPU per 4 MB. Both are chosen before ``hello``, while
#: the container starts. Without the tools it says ``no-tar`` and only keeps
#: the container alive, as the local backend's does.
MAIN = """\
trap 'exit 0' TERM
has() { for t; do command -v "$t" >/dev/null 2>&1 || return 1; done; }
if echo | dd bs=1 count=1 iflag=fullblock,count_bytes >/dev/null 2>&1; then
  take() { dd bs=65536 iflag=fullblock,count_bytes count="$1" 2>/dev/null; }
  tools="tar cat"
else
  take() { head -c "$1"; }
  tools="tar head cat"
fi
read -r hello
if has $tools; then
  echo scratchd:send
  read -r size
  if take "$size" | { tar -x -C / 2>&1; s=$?; cat >/dev/null; exit $s; }; then
    echo scratchd:ready
  else
    echo scratchd:failed
  fi
  while read -r what; do
    [ "$what" = collect ] || continue
    mkdir -p /pipeline/output /pipeline/report
    tar -c -C /pipeline output report
    echo "scratchd:collected $?"
    exit 0
  done
else
  echo scratchd:no-tar
fi
while :; do sleep 3600 & wait $!; done
"""


class RemoteEngineBackend(DockerBackend):
    """A :class:`DockerBackend` on ``endpoint``; see the module docstring."""

    def __init__(self, endpoint: EngineEndpoint, **kwargs) -> None:
        labels = {**kwargs.pop("labels", {}), ENGINE_LABEL: endpoint.name}
        timeout = kwargs.pop("api_timeout", 120)
        super().__init__(
            lambda: endpoint.shared_client(timeout),  # its connections outlive the pipeline
            labels=labels,
            owner=(0, 0),  # nothing to hand back: the files stay on the engine
            owns_client=False,
            **kwargs,
        )
        self.endpoint = endpoint
        self._where = f"{endpoint.name} ({endpoint.url})"
        self._streamed = False  # the main process took the source: it sends the output too
        self._collected = False  # the output is home: nothing runs in the container any more
        self._prepared: tuple | None = None  # the job prepare() made the container for
        self._filled = True  # False: the pipeline container is started but has no source yet
        self._tar: _SourceTar | None = None  # the job's source tar, made beside the setup
        self._starting = contextlib.ExitStack()  # holds the engine's setup gate (see setup)

    def prepare(self, job: PipelineJob) -> bool:
        """Make and start ``job``'s pipeline container before the build holds a slot.

        Nothing runs in it but the main process, which waits for :meth:`setup`
        to say hello; no step runs before that. A job with services is not
        prepared (they would run); returns whether the container was made.
        """
        if job.services:
            return False
        # Pipelines that hold a slot here start first; this one only waits for its slot.
        self.endpoint.wait_for_setups()
        self._filled = False
        try:
            super().setup(job)
        except BaseException:
            self.teardown()
            raise
        self._prepared = _prepared_key(job)
        return True

    def setup(self, job: PipelineJob) -> None:
        """The prepared container when it was made for ``job``, else a new one."""
        prepared, self._prepared = self._prepared, None
        if prepared is None or prepared != _prepared_key(job) or self._container is None:
            self._filled = True
            super().setup(job)  # holds the engine's setup gate from _connect()
            return
        self._job = job
        self._starting.enter_context(self.endpoint.setting_up())
        try:
            self._fill(self._container, job, started=True)
        except BaseException:
            self.teardown()
            raise

    def _fields(self, **more: str) -> dict:
        return super()._fields(ENGINE=self.endpoint.name, **more)

    def _connect(self) -> docker.DockerClient:
        """The engine's shared client, without the local backend's ping.

        Its connections are open and the health thread pings the engine; a
        ping per pipeline only adds a round trip to the slot's path. A dead
        engine fails the first real call instead, as the same BackendError.
        """
        client = self._factory()
        assert self._job is not None
        if self._filled:  # a pipeline with its slot, not a head start: until its first step runs
            self._starting.enter_context(self.endpoint.setting_up())
        self._tar = _SourceTar(self._job)  # made while the engine makes the container
        return client

    def _pump(self, exec_id, events, on_line, clock) -> None:
        self.endpoint.keep_warm()  # the step's exec has taken its connection for good
        self._starting.close()  # the first step runs: this pipeline is set up
        super()._pump(exec_id, events, on_line, clock)

    def _host_options(self, job: PipelineJob) -> dict:
        # No log driver: the main process's stdout carries the output tar, which
        # must not be stored a second time in the engine's container log.
        return {
            "binds": {cache_volume(job): {"bind": f"{PIPELINE_DIR}/cache", "mode": "rw"}},
            "log_config": docker.types.LogConfig(type="none"),
        }

    def _main_process(self) -> dict:
        # detach: without it the SDK also sets StdinOnce, and the engine would close
        # the main process's stdin when the upload's connection ends.
        args = {"command": ["-c", MAIN], "entrypoint": ["/bin/sh"]}
        return {**args, "stdin_open": True, "detach": True}

    def _start(self, cid: str, job: PipelineJob) -> None:
        """Start the container and hand its main process the source tar (not when preparing)."""
        if not self._filled:
            super()._start(cid, job)
            return
        self._fill(cid, job, started=False)

    def _fill(self, cid: str, job: PipelineJob, *, started: bool) -> None:
        """Hand the main process the source tar; start the container first unless ``started``."""
        upload, self._tar = self._tar or _SourceTar(job), None
        with upload as (spool, size):
            with self._engine("attach to the pipeline container"):
                channel = Attached(self._api, cid, self._api.timeout)
            try:
                if not started:
                    super()._start(cid, job)
                channel.send(b"hello\n")
                self._streamed = self._stream_source(channel, spool, size)
            finally:
                channel.close()
                # The attach took a connection for good: another is opened once the
                # bytes are across (the spare left serves the first step's calls).
                self.endpoint.keep_warm()
            if not self._streamed:
                spool.seek(0)
                with self._engine("upload the source"):
                    if not self._api.put_archive(cid, "/", spool):
                        raise BackendError(f"engine {self.endpoint.name} refused the source tar")
        log.info("source uploaded (%d bytes)", size, extra=self._fields())

    def _stream_source(self, channel: Attached, spool: IO[bytes], size: int) -> bool:
        """True when the main process unpacked the source; False: use the archive API."""
        said = channel.marker()
        if said == "no-tar":
            log.info("the box has no tar: files go by the archive API", extra=self._fields())
            return False
        if said != "send":
            raise BackendError(f"the pipeline container said {said!r} instead of 'send'")
        channel.send(f"{size}\n".encode())
        spool.seek(0)
        channel.send_file(spool)
        said = channel.marker()
        if said == "ready":
            return True
        log.warning(
            "the box's tar could not unpack the source (%s): files go by the archive API",
            " / ".join(channel.said[-3:]) or said,
            extra=self._fields(),
        )
        return False

    def collect(self) -> None:
        """Copy the output and report dirs back into the job's host directories.

        The pipeline container's main process ends after sending them.
        """
        job = self._require()
        targets = {name: getattr(job.dirs, name) for name in _COPY_BACK}
        if not self._streamed:
            self._collect_archives(targets)
            return
        with self._engine("download the output"):
            channel = Attached(self._api, self._require_container(), self._api.timeout)
        try:
            channel.send(b"collect\n")
            stdout = channel.stdout()
            stdout.unread(_extract(stdout, targets))  # the status line follows the tar
            said = channel.marker()
        finally:
            channel.close()
            self.endpoint.keep_warm()  # for the next pipeline, once the output is home
        if said != "collected 0":
            why = channel.errors or " / ".join(channel.said[-3:]) or said
            raise BackendError(f"packing the output failed ({said}): {why}")
        self._collected = True

    def teardown(self) -> None:
        """After :meth:`collect`: removed later, off the slot; otherwise at once."""
        self._prepared = None
        self._starting.close()
        upload, self._tar = self._tar, None
        if upload is not None:
            upload.close()
        if not self._collected or self._client is None:
            super().teardown()
            self._collected = False
            return
        containers, network, fields = list(self._containers), self._network, self._fields()
        self._reset()
        self._collected = False
        self.endpoint.remove_later(containers, network, fields)

    def _collect_archives(self, targets: dict[str, Path]) -> None:
        for name, target in targets.items():
            with tempfile.TemporaryFile() as spool:
                with self._engine(f"download the {name} dir"):
                    path = f"{PIPELINE_DIR}/{name}"
                    chunks, _ = self._api.get_archive(self._require_container(), path)
                    for chunk in chunks:
                        spool.write(chunk)
                spool.seek(0)
                _extract(spool, {name: target})
        self._collected = True

    def stage_dir(self, directory: Path, name: str) -> str:
        """Copy a local step's directory into the pipeline container; returns its path there.

        The shared-disk backends stage it in the cache dir, which here is a
        volume on the engine's host: the controller's copy would not be seen.
        """
        inside = f"steps/local-{name}"
        with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
            with tarfile.open(fileobj=spool, mode="w", format=tarfile.GNU_FORMAT) as tar:
                tar.add(directory, inside, filter=_owned_by_root)
            spool.seek(0)
            with self._engine(f"copy the step directory {directory.name!r}"):
                if not self._api.put_archive(self._require_container(), PIPELINE_DIR, spool):
                    raise BackendError(f"engine {self.endpoint.name} refused the step directory")
        return f"{PIPELINE_DIR}/{inside}"

    def _require_container(self) -> str:
        if self._container is None:
            raise BackendError("remote engine backend used before setup()")
        return self._container


class _SourceTar:
    """The job's source tar, made on its own thread from the start of setup or prepare.

    Setup makes the container meanwhile (a prepared build's tar waits with
    its container), so the upload starts with the tar ready. Used as a
    context manager, it waits for the tar and yields ``(spool, size)``;
    a failure to read the source is raised there.
    """

    def __init__(self, job: PipelineJob) -> None:
        self._spool = tempfile.SpooledTemporaryFile(_SPOOL)  # noqa: SIM115 - closed by close()
        self._size = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._make, args=(job,), name="scratchd-source-tar", daemon=True
        )
        self._thread.start()

    def _make(self, job: PipelineJob) -> None:
        try:
            self._size = _source_tar(job, self._spool)
        except BaseException as exc:  # raised by __enter__, in the build's thread
            self._error = exc

    def __enter__(self) -> tuple[IO[bytes], int]:
        self._thread.join()
        if self._error is not None:
            self._spool.close()
            raise self._error
        return self._spool, self._size

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._thread.join()
        self._spool.close()


def _prepared_key(job: PipelineJob) -> tuple:
    """What the prepared container depends on: a job that differs gets a new one."""
    return (job.name, job.run_id, job.box, job.dirs, tuple(sorted(job.log_fields.items())))


def _source_tar(job: PipelineJob, spool: IO[bytes]) -> int:
    """The tar of ``/pipeline`` with the source in it; returns its size.

    GNU format: every ``tar`` a box may have (GNU, busybox) reads it, and
    plain numeric mtimes keep pax headers out of every member.
    """
    with tarfile.open(fileobj=spool, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in ("pipeline", "pipeline/output", "pipeline/report", "pipeline/steps"):
            tar.addfile(_directory(name))
        tar.add(job.dirs.root, "pipeline/source", filter=_owned_by_root)
    return spool.tell()


def cache_volume(job: PipelineJob) -> str:
    """One named volume per repository: ``scratchd-cache-<repo>``."""
    repo = job.log_fields.get("REPO", "") or "default"
    return "scratchd-cache-" + re.sub(r"[^a-zA-Z0-9_.-]+", "-", repo)[:60]


def _extract(spool, targets: dict[str, Path]) -> int:
    """Unpack a tar of top dirs (``output/...``, ``report/...``) into their ``targets``.

    Each target is replaced. The ``data`` filter refuses absolute paths,
    ``..`` and links that leave the directory: the engine's host is not
    trusted with our disk. Returns where the tar's end-of-archive starts.
    """
    for target in targets.values():
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
    try:
        return _unpack(spool, targets)
    except tarfile.TarError as exc:
        raise BackendError(f"the engine sent a broken tar: {exc}") from None


def _unpack(spool, targets: dict[str, Path]) -> int:
    with tarfile.open(fileobj=spool, mode="r|") as tar:
        for member in tar:
            top, _, rest = member.name.partition("/")
            if top not in targets:
                raise BackendError(f"engine sent an unexpected path {member.name!r}")
            if not rest:
                continue
            member.name = rest
            if member.islnk():
                member.linkname = member.linkname.removeprefix(f"{top}/")
            tar.extract(member, targets[top], filter="data")
        return tar.offset


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
