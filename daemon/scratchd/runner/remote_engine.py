"""The remote-engine backend: the docker backend, on an engine that does not share our disk.

Everything about containers, steps, services, timeouts and teardown is the
:class:`~scratchd.runner.docker_backend.DockerBackend`'s; only the files
differ. Bind mounts would name directories on the *engine's* host, so:

- the source goes in as one tar of the exported tree (``put_archive``
  before the container starts), streamed from a temp file so a large tree
  never sits in memory;
- the output and report dirs come back with ``get_archive`` when the
  pipeline's steps are done (:meth:`collect`), so the controller bakes and
  pushes the image and registry credentials never leave it;
- ``WERCKER_CACHE_DIR`` is a named volume per repository on that engine
  (placement prefers the engine that last built the repository, which keeps
  it warm).

An engine that stops answering surfaces as :class:`BackendError`, an
infrastructure error: the build is retried, never recorded as a step failure.
"""

from __future__ import annotations

import logging
import re
import shutil
import tarfile
import tempfile
from pathlib import Path

from scratchd.errors import BackendError
from scratchd.runner.backend import PipelineJob
from scratchd.runner.docker_backend import PIPELINE_DIR, DockerBackend
from scratchd.runner.engines import ENGINE_LABEL, EngineEndpoint

log = logging.getLogger(__name__)

_SPOOL = 8 * 1024 * 1024  # tars up to this size stay in memory
_COPY_BACK = ("output", "report")


class RemoteEngineBackend(DockerBackend):
    """A :class:`DockerBackend` on ``endpoint``; see the module docstring."""

    def __init__(self, endpoint: EngineEndpoint, **kwargs) -> None:
        labels = {**kwargs.pop("labels", {}), ENGINE_LABEL: endpoint.name}
        super().__init__(
            endpoint.factory(kwargs.pop("api_timeout", 120)),
            labels=labels,
            owner=(0, 0),  # nothing to hand back: the files stay on the engine
            **kwargs,
        )
        self.endpoint = endpoint
        self._where = f"{endpoint.name} ({endpoint.url})"

    def _fields(self, **more: str) -> dict:
        return super()._fields(ENGINE=self.endpoint.name, **more)

    def _binds(self, job: PipelineJob) -> dict[str, dict[str, str]]:
        return {cache_volume(job): {"bind": f"{PIPELINE_DIR}/cache", "mode": "rw"}}

    def _before_start(self, cid: str, job: PipelineJob) -> None:
        with tempfile.SpooledTemporaryFile(_SPOOL) as spool:
            with tarfile.open(fileobj=spool, mode="w") as tar:
                for name in ("pipeline", "pipeline/output", "pipeline/report", "pipeline/steps"):
                    tar.addfile(_directory(name))
                tar.add(job.dirs.root, "pipeline/source", filter=_owned_by_root)
            size = spool.tell()
            spool.seek(0)
            with self._engine("upload the source"):
                if not self._api.put_archive(cid, "/", spool):
                    raise BackendError(f"engine {self.endpoint.name} refused the source tar")
        log.info("source uploaded (%d bytes)", size, extra=self._fields())

    def collect(self) -> None:
        """Copy the output and report dirs back into the job's host directories."""
        job = self._require()
        for name in _COPY_BACK:
            target: Path = getattr(job.dirs, name)
            with tempfile.TemporaryFile() as spool:
                with self._engine(f"download the {name} dir"):
                    chunks, _ = self._api.get_archive(self._container, f"{PIPELINE_DIR}/{name}")
                    for chunk in chunks:
                        spool.write(chunk)
                spool.seek(0)
                _extract(spool, name, target)


def cache_volume(job: PipelineJob) -> str:
    """One named volume per repository: ``scratchd-cache-<repo>``."""
    repo = job.log_fields.get("REPO", "") or "default"
    return "scratchd-cache-" + re.sub(r"[^a-zA-Z0-9_.-]+", "-", repo)[:60]


def _extract(spool, top: str, target: Path) -> None:
    """Unpack a ``get_archive`` tar (rooted at ``top/``) into ``target``, replacing it.

    The ``data`` filter refuses absolute paths, ``..`` and links that leave
    the directory: the engine's host is not trusted with our disk.
    """
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    with tarfile.open(fileobj=spool, mode="r|") as tar:
        for member in tar:
            if member.name == top:
                continue
            if not member.name.startswith(f"{top}/"):
                raise BackendError(f"engine sent an unexpected path {member.name!r}")
            member.name = member.name[len(top) + 1 :]
            if member.islnk():
                member.linkname = member.linkname.removeprefix(f"{top}/")
            tar.extract(member, target, filter="data")


def _directory(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
