"""The registry client: push an :class:`~scratchd.image.types.Image` under tags.

Order matters for correctness: every blob is in the repository before the
manifest is put, and the manifest is put once per tag only after that, so a
failed push never leaves a tag pointing at a partial image. Blobs go up in
parallel (bounded), each by the cheapest route :mod:`.upload` finds.

The client remembers, for its lifetime, which repository of a registry it
saw each blob in (from HEADs and uploads), so pushing the same layer to a
second repository becomes a cross-repository mount. The daemon can add what
it knows from earlier runs through ``mount_from``.

A daemon holds one client for its lifetime, but each push must use the
credentials of the config it holds *now* (a reload, a step's own
username). :meth:`RegistryClient.with_credentials` gives a client for one
push that shares the long-lived one's connections, blob memory and token
cache (tokens are keyed by credential, so nothing is lent across them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from urllib.parse import urljoin

from scratchd.errors import RegistryError
from scratchd.image.attest import AttestedImage
from scratchd.image.types import Blob, Image, JSONDoc
from scratchd.models import PUSH_OUTCOMES, ImageRef, PushFigures
from scratchd.registry.attaching import AttestationPush, HostSet
from scratchd.registry.auth import Authenticator, TokenCache
from scratchd.registry.counts import Counts, merge, tally
from scratchd.registry.credentials import CredentialStore
from scratchd.registry.http import HttpClient, Response
from scratchd.registry.reference import validate_tag
from scratchd.registry.retry import RetryPolicy
from scratchd.registry.transport import Transport
from scratchd.registry.upload import BlobUploader, Progress, ProgressEvent, PushAborted, Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What a push did: per blob outcome how many blobs and bytes, and how long it took.

    ``blobs["uploaded"]`` counts what went over the wire; ``"existed"`` what
    the repository already had (a HEAD said so); ``"mounted"`` what came from
    another repository of the registry. Bytes are the blobs' sizes either way,
    so a dashboard can tell "pushed 200 MB" from "200 MB were already there".
    """

    repository: str
    digest: str
    tags: tuple[str, ...]
    blobs: Counts
    seconds: float = 0.0
    registry: str = ""
    #: For an attested image (an index): the platform manifest's digest and
    #: how its attestation became findable ("referrers API" or the fallback tag).
    platform_digest: str = ""
    referrers: str = ""

    @property
    def bytes_uploaded(self) -> int:
        return self.blobs["uploaded"][1]

    @property
    def blobs_skipped(self) -> int:
        return self.blobs["existed"][0]

    @property
    def blobs_mounted(self) -> int:
        return self.blobs["mounted"][0]

    def figures(self) -> PushFigures:
        """The push as the daemon records it (``/metrics``: bytes and blobs per registry)."""
        path = self.repository.removeprefix(f"{self.registry}/")
        rows = tuple((o, *self.blobs[o]) for o in PUSH_OUTCOMES)
        return PushFigures(self.registry, path, self.seconds, rows)

    def to_json(self) -> JSONDoc:
        out: JSONDoc = {
            "repository": self.repository,
            "digest": self.digest,
            "tags": list(self.tags),
            "bytes_uploaded": self.bytes_uploaded,
            "blobs_skipped": self.blobs_skipped,
            "blobs_mounted": self.blobs_mounted,
        }
        if self.platform_digest:
            out["platform_digest"] = self.platform_digest
            out["referrers"] = self.referrers
        return out


class BlobMemory:
    """Which repository of a registry holds each blob; thread-safe, bounded (oldest go)."""

    def __init__(self, limit: int = 50_000) -> None:
        self._limit = limit
        self._seen: dict[tuple[str, str], str] = {}  # (registry, digest) -> repository
        self._lock = threading.Lock()

    def remember(self, host: str, digest: str, repository: str) -> None:
        with self._lock:
            self._seen.pop((host, digest), None)  # re-insert: newest last
            self._seen[(host, digest)] = repository
            while len(self._seen) > self._limit:
                del self._seen[next(iter(self._seen))]

    def where(self, host: str, digest: str) -> str | None:
        with self._lock:
            return self._seen.get((host, digest))


class RegistryClient:
    """Pushes images to OCI distribution registries (Quay, Distribution, Hub ...)."""

    def __init__(
        self,
        credentials: CredentialStore,
        *,
        insecure: Iterable[str] = (),
        ca_file: str | None = None,
        http: HttpClient | None = None,
        retry: RetryPolicy | None = None,
        progress: Progress | None = None,
        parallel: int = 3,
        chunk_threshold: int = 512 << 20,
        chunk_size: int = 64 << 20,
        memory: BlobMemory | None = None,
        tokens: TokenCache | None = None,
        referrers: HostSet | None = None,
        whole_posts_ignored: HostSet | None = None,
    ) -> None:
        self._http = http or HttpClient()
        self._tokens = tokens or TokenCache()
        self._auth = Authenticator(
            credentials,
            self._http,
            verify=lambda url: self._transport.verify(url),
            tokens=self._tokens,
        )
        self._insecure = tuple(insecure)
        self._ca_file = ca_file
        self._transport = Transport(
            self._http, self._auth, insecure=self._insecure, ca_file=ca_file
        )
        self._retry = retry or RetryPolicy()
        self._progress = progress
        self._parallel = max(1, parallel)
        self._chunking = (chunk_threshold, chunk_size)
        self._memory = memory or BlobMemory()
        self._referrers = referrers or HostSet()
        self._whole_posts_ignored = whole_posts_ignored or HostSet()

    def with_credentials(
        self, credentials: CredentialStore, *, insecure: Iterable[str] | None = None
    ) -> RegistryClient:
        """A client for one push with these credentials, sharing this one's state.

        Connections, the blob memory (cross-repository mounts), which
        registries have the referrers API and cached tokens carry over from
        push to push; credentials and the insecure hosts are the caller's, as
        of now.
        """
        return RegistryClient(
            credentials,
            insecure=self._insecure if insecure is None else insecure,
            ca_file=self._ca_file,
            http=self._http,
            retry=self._retry,
            progress=self._progress,
            parallel=self._parallel,
            chunk_threshold=self._chunking[0],
            chunk_size=self._chunking[1],
            memory=self._memory,
            tokens=self._tokens,
            referrers=self._referrers,
            whole_posts_ignored=self._whole_posts_ignored,
        )

    def push(
        self,
        image: Image | AttestedImage,
        ref: ImageRef,
        tags: Sequence[str] = ("latest",),
        *,
        mount_from: Mapping[str, str] | None = None,
    ) -> PushResult:
        """Push blobs, then the manifest under each tag; returns what happened.

        ``mount_from`` maps blob digests to a repository of the same registry
        known to hold them (a hint; wrong hints only cost one request).
        """
        tags = tuple(dict.fromkeys(validate_tag(t) for t in tags)) or ("latest",)
        started = time.monotonic()
        base = self._retry.call(lambda: self._transport.base(ref.registry), f"ping {ref.registry}")
        target = Target(ref.registry, base, ref.repository)
        self._auth.want(ref.registry, ref.repository, [f"repository:{ref.repository}:pull,push"])
        plain = image.image if isinstance(image, AttestedImage) else image
        with ThreadPoolExecutor(len(tags) + 3) as side:
            attaching = AttestationPush(side, self._transport, self._retry, self._referrers)
            if isinstance(image, AttestedImage):
                attaching.start(target, image, self._push_small, self._put_manifest)
            counts = self._push_blobs(target, plain.blobs(), dict(mount_from or {}))
            if isinstance(image, AttestedImage):  # an index may name only manifests already in
                self._put_manifest(target, image.image, image.image.digest)
                attaching.manifest_pushed()
            puts = [side.submit(self._put_manifest, target, image, tag) for tag in tags]
            for put in puts:
                put.result()
            referrers, attested = attaching.finish()
        counts = merge(counts, attested)
        platform = plain.digest if referrers else ""
        seconds = time.monotonic() - started
        result = PushResult(
            str(ref), image.digest, tags, counts, seconds, ref.registry, platform, referrers
        )
        log.info(
            "pushed %s@%s as %s (%d bytes uploaded, %d skipped, %d mounted) in %.1f s",
            ref, image.digest, ",".join(tags), result.bytes_uploaded,
            result.blobs_skipped, result.blobs_mounted, seconds,
            extra={"IMAGE_DIGEST": image.digest},
        )  # fmt: skip
        return result

    def read(self, ref: ImageRef, kind: str, reference: str, accept: str = "") -> bytes | None:
        """GET ``manifests/<reference>`` or ``blobs/<digest>`` (pull scope); None on 404.

        Content addressed by digest is checked against it, so a reader such as
        ``scratchd inspect`` never trusts bytes the registry swapped.
        """
        import hashlib

        base = self._retry.call(lambda: self._transport.base(ref.registry), f"ping {ref.registry}")
        target = Target(ref.registry, base, ref.repository)
        self._auth.want(ref.registry, ref.repository, [f"repository:{ref.repository}:pull"])

        def get() -> Response:
            return self._transport.send(
                "GET", target.url(f"{kind}/{reference}"), target.host,
                repository=ref.repository, ok=(200, 404),
                headers={"Accept": accept} if accept else None,
            )  # fmt: skip

        response = self._retry.call(get, f"GET {kind} {ref.repository}:{reference}")
        if response.status_code == 404:
            return None
        data = response.content
        if reference.startswith("sha256:") and (
            "sha256:" + hashlib.sha256(data).hexdigest() != reference
        ):
            raise RegistryError(f"{ref}: {kind} {reference}: content does not match its digest")
        return data

    def _push_blobs(
        self,
        target: Target,
        blobs: Sequence[Blob],
        hints: Mapping[str, str],
        small: Collection[str] = frozenset(),
    ) -> Counts:
        abort = threading.Event()
        uploader = BlobUploader(
            self._transport, self._retry,
            chunk_threshold=self._chunking[0], chunk_size=self._chunking[1],
            progress=self._progress, abort=abort,
        )  # fmt: skip
        unique = list({b.descriptor.digest: b for b in blobs}.values())
        # small (attestation) blobs get their own workers: a few KB must not queue behind a layer
        workers = min(self._parallel, len(unique) - len(small)) + len(small)
        with ThreadPoolExecutor(workers or 1) as pool:
            futures = [
                pool.submit(
                    self._push_blob, uploader, target, b, hints, b.descriptor.digest in small
                )
                for b in unique
            ]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            failed = [f for f in done if f.exception() is not None]
            if failed:
                abort.set()
                for future in pending:
                    future.cancel()
                wait(pending)
                raise _first_error(failed)
        return tally(f.result() for f in futures)

    def _push_small(self, target: Target, blobs: Sequence[Blob], small: Collection[str]) -> Counts:
        return self._push_blobs(target, blobs, {}, small)

    def _push_blob(
        self,
        uploader: BlobUploader,
        target: Target,
        blob: Blob,
        hints: Mapping[str, str],
        small: bool = False,
    ) -> tuple[str, int]:
        """(outcome, the blob's size): how it reached the repository."""
        desc = blob.descriptor
        source = hints.get(desc.digest) or self._seen_in(target, desc.digest)
        # a small blob's HEAD costs as much as its upload: asked only if it should be there
        if (not small or source == target.repository) and uploader.exists(target, blob):
            self._remember(target, desc.digest)
            self._report(desc.digest, desc.size, "skipped")
            return "existed", desc.size
        opened = None
        if source and source != target.repository:
            opened = uploader.mount(target, blob, source)
            if opened == "mounted":
                self._remember(target, desc.digest)
                self._report(desc.digest, desc.size, "mounted")
                return "mounted", desc.size
        if small and opened is None and target.host not in self._whole_posts_ignored:
            return self._post_small(uploader, target, blob)
        size = uploader.upload(target, blob, opened)
        self._remember(target, desc.digest)
        return "uploaded", size

    def _post_small(self, uploader: BlobUploader, target: Target, blob: Blob) -> tuple[str, int]:
        """A few-KB attestation blob in one request (monolithic POST, distribution spec).

        A HEAD first would cost as much as the upload (it is sent only when the
        client put the blob in this repository before; the empty config of
        every attestation is, from a daemon's second push on, and is mounted
        from there into other repositories). A registry that answers 202
        instead (Distribution 2.x ignores ``?digest=``) gets the rest of an
        ordinary upload at the URL it gave, and from then on this client's
        uploads to it open with an empty POST: the body would be sent twice.
        """
        digest = blob.descriptor.digest

        def post() -> Response:
            return self._transport.send(
                "POST", target.url(f"blobs/uploads/?digest={digest}"), target.host,
                repository=target.repository, ok=(201, 202),
                headers={"Content-Type": "application/octet-stream"}, body=blob.data,
            )  # fmt: skip

        response = self._retry.call(post, f"POST blob {digest[:19]}")
        if response.status_code == 202:  # next time: no body this registry ignores
            self._whole_posts_ignored.add(target.host)
            location = response.headers.get("Location") or ""
            uploader.upload(target, blob, urljoin(response.url, location) if location else None)
        self._remember(target, digest)
        return "uploaded", blob.descriptor.size

    def _put_manifest(self, target: Target, image: Image | AttestedImage, tag: str) -> str:
        """PUT ``image``'s manifest under ``tag`` (or its digest); returns ``OCI-Subject``."""

        def put() -> tuple[str | None, str | None]:
            response = self._transport.send(
                "PUT", target.url(f"manifests/{tag}"), target.host, repository=target.repository,
                ok=(200, 201), headers={"Content-Type": image.media_type}, body=image.manifest,
            )  # fmt: skip
            response.close()
            return response.headers.get("Docker-Content-Digest"), response.headers.get(
                "OCI-Subject"
            )

        returned, subject = self._retry.call(put, f"PUT manifest {target.repository}:{tag}")
        if returned and returned != image.digest:
            raise RegistryError(
                f"{target.host}: manifest {target.repository}:{tag} stored as {returned}, "
                f"expected {image.digest}: the registry changed the manifest"
            )
        return subject or ""

    def _remember(self, target: Target, digest: str) -> None:
        self._memory.remember(target.host, digest, target.repository)

    def _seen_in(self, target: Target, digest: str) -> str | None:
        return self._memory.where(target.host, digest)

    def _report(self, digest: str, size: int, state: str) -> None:
        if self._progress is not None:
            self._progress(ProgressEvent(digest, size, size, state))


def _first_error(failed: Iterable[Future[tuple[str, int]]]) -> BaseException:
    """The real failure, not the PushAborted of a blob stopped because of it."""
    errors = [e for f in failed if (e := f.exception()) is not None]
    real = [e for e in errors if not isinstance(e, PushAborted)]
    return real[0] if real else RegistryError("push aborted")
