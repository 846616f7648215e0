"""Small frozen value types shared by every layer.

They carry data between layers that must not import each other (the image
builder and the pipeline, the store and the runner), so they hold no
behaviour beyond validation and formatting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# Media types (Docker v2 schema 2 and OCI image spec v1).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


class Secret(str):
    """A string whose ``repr`` and ``str`` formatting never show the value.

    ``reveal()`` is the one explicit way to get the text back, so every place
    that sends a password somewhere is easy to find with grep.
    """

    __slots__ = ()

    def reveal(self) -> str:
        return str.__str__(self)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"


@dataclass(frozen=True)
class Platform:
    """An image platform such as ``linux/amd64`` or ``linux/arm64/v8``."""

    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class ImageSpec:
    """Everything about an image except its files.

    Mirrors the options of wercker's ``internal/docker-scratch-push`` step.
    ``created`` is seconds since the epoch (SOURCE_DATE_EPOCH semantics): it
    is both the config's ``created`` and every file's mtime, which is what
    makes two bakes of the same commit byte-identical.
    """

    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    ports: tuple[str, ...] = ()  # normalised "5000/tcp"
    labels: tuple[tuple[str, str], ...] = ()
    volumes: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""
    stop_signal: str = ""
    created: int = 0
    revision: str = ""
    source: str = ""
    platform: Platform = field(default_factory=Platform)
    oci: bool = False  # False: Docker v2 schema 2 media types (widest support)
    compression: str = "gzip"  # "gzip" or "zstd" (OCI only)


@dataclass(frozen=True)
class Descriptor:
    """A content-addressed pointer to a blob (OCI descriptor)."""

    media_type: str
    digest: str
    size: int
    annotations: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> dict:
        out: dict = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        return out


@dataclass(frozen=True)
class ImageRef:
    """Where an image lives in a registry: ``quay.io/org/app``.

    ``registry`` is the host[:port] used on the wire (Docker Hub's is
    ``registry-1.docker.io``); ``repository`` is the path (``org/app``,
    ``library/busybox``).
    """

    registry: str
    repository: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True)
class Commit:
    """A commit on a watched ref, as the watcher saw it."""

    repo: str  # configured repository name
    ref: str  # full ref name, "refs/heads/main"
    sha: str
    time: int = 0  # committer time, seconds since the epoch

    @property
    def branch(self) -> str:
        for prefix in ("refs/heads/", "refs/tags/"):
            if self.ref.startswith(prefix):
                return self.ref[len(prefix) :]
        return self.ref


@dataclass(frozen=True)
class CommitInfo:
    """What a build knows about its commit (the ``WERCKER_GIT_*`` facts).

    ``domain``/``owner``/``repository`` come from the ``origin`` remote URL
    (``github.com``/``org``/``app``) or, without a remote, from the local path.
    Times are seconds since the epoch; ``commit_time`` is the image's
    ``created`` (SOURCE_DATE_EPOCH semantics).
    """

    sha: str
    branch: str = ""
    repo: str = ""  # configured repository name
    author_time: int = 0
    commit_time: int = 0
    message: str = ""
    remote_url: str = ""
    domain: str = ""
    owner: str = ""
    repository: str = ""


class BuildStatus(enum.StrEnum):
    """The life of a build record. Only ``PASSED`` means it passed."""

    QUEUED = "queued"
    RUNNING = "running"
    PASSED = "passed"
    FAILED = "failed"  # the user's build failed
    ERROR = "error"  # infrastructure error after retries
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # daemon stopped or crashed mid-build

    @property
    def finished(self) -> bool:
        return self in {self.PASSED, self.FAILED, self.ERROR, self.CANCELLED}


class Trigger(enum.StrEnum):
    PUSH = "push"
    POLL = "poll"
    CRON = "cron"
    MANUAL = "manual"
    RECOVERY = "recovery"
