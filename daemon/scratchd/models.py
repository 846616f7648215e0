"""Small frozen value types shared by every layer.

They carry data between layers that must not import each other (the image
builder and the pipeline, the store and the runner), so they hold no
behaviour beyond validation and formatting.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from scratchd.build_status import BuildStatus as BuildStatus  # its home for light readers

# Media types (Docker v2 schema 2 and OCI image spec v1).
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"


#: Secrets shorter than this cannot be masked (they would mask ordinary words such as
#: "on"), so loaders refuse them instead of leaving them in clear. Documented in the README.
MIN_SECRET_LENGTH = 3


class Secret:
    """A secret value that shows ``***`` everywhere except :meth:`reveal`.

    Not a ``str`` subclass on purpose: a subclass hands its value to every
    ``str`` operation (``"Basic " + s``, ``"".join([s])``, ``json.dumps(s)``,
    ``s.encode()``, sqlite parameters, ``subprocess`` environments). Here
    formatting (``str``, ``repr``, f-strings, ``format``, ``"%s" %``) shows the
    mask, and every operation that would copy the value (``+``, ``%`` on it,
    ``*``, ``encode``, iteration, ``len``, pickling) raises :class:`TypeError`.
    ``reveal()`` is the one way to the text, so each place that sends a
    secret somewhere is easy to find (and a test checks that list).
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value._value
        if not isinstance(value, str):
            raise TypeError(f"Secret wraps a str, not {type(value).__name__}")
        object.__setattr__(self, "_value", value)

    @property
    def too_short(self) -> bool:
        """Non-empty but shorter than :data:`MIN_SECRET_LENGTH`: it could not be masked."""
        return 0 < len(self._value) < MIN_SECRET_LENGTH

    def reveal(self) -> str:
        """The real text: call it only where the value is used (auth header, step env)."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __format__(self, spec: str) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        # By value, so a reloaded config that kept its password compares equal.
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict) -> Secret:
        return self

    def _refuse(self, *args: object, **kwargs: object):
        raise TypeError("a Secret is not a str: call .reveal() where the value is really needed")

    __add__ = __radd__ = __mul__ = __rmul__ = __mod__ = __rmod__ = _refuse
    __iter__ = __len__ = __getitem__ = __contains__ = _refuse
    encode = __reduce__ = __reduce_ex__ = __getstate__ = _refuse


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


#: How a blob reached the repository: sent, already there (HEAD), mounted from another one.
PUSH_OUTCOMES = ("uploaded", "existed", "mounted")


@dataclass(frozen=True)
class PushFigures:
    """What one push moved to one repository: per outcome, (blobs, bytes); how long it took.

    The registry client makes it, the executor carries it in the build's
    outcome and the daemon stores it, so ``/metrics`` can say per registry
    how much went over the wire and how much the registry already held.
    """

    registry: str  # host[:port], as on the wire
    repository: str
    seconds: float = 0.0
    blobs: tuple[tuple[str, int, int], ...] = ()  # (outcome, count, bytes), one per outcome

    def of(self, outcome: str) -> tuple[int, int]:
        """(blobs, bytes) of one outcome; (0, 0) when none went that way."""
        for name, count, size in self.blobs:
            if name == outcome:
                return count, size
        return 0, 0


@dataclass(frozen=True)
class BoxDigest:
    """A box (or service) image as the engine ran it, for the provenance.

    ``of`` says what ``digest`` is, because the two are not interchangeable:
    ``"manifest"`` is the registry's manifest digest (from the engine's
    ``RepoDigests``, or the ``@sha256:`` the box was pinned by), what
    ``docker pull name@digest`` fetches; ``"image-id"`` is the engine's image
    ID, the digest of the image *config*, for an image built or loaded on this
    engine that no registry ever gave a manifest digest for.
    """

    name: str  # the reference the engine ran, without a digest: "golang:1.22"
    digest: str  # "sha256:..."
    of: str = "manifest"


@dataclass(frozen=True)
class Commit:
    """A commit on a watched ref, as the watcher saw it."""

    repo: str  # configured repository name
    ref: str  # full ref name, "refs/heads/main"
    sha: str
    time: int = 0  # committer time, seconds since the epoch
    #: When the daemon first saw the ref move (an inotify event, or the poll that read
    #: it), seconds since the epoch: the start of the trigger latency. Not part of identity.
    seen_at: float | None = field(default=None, compare=False)

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
    author: str = ""  # "Name <email>", as git shows it
    remote_url: str = ""
    domain: str = ""
    owner: str = ""
    repository: str = ""


class Trigger(enum.StrEnum):
    PUSH = "push"
    POLL = "poll"
    CRON = "cron"
    MANUAL = "manual"
    RECOVERY = "recovery"
