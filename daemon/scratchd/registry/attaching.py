"""The attestation's side of a push, run beside the platform image's layers.

An attested image reaches a registry as: the layers and config, the
platform manifest by digest, the attestation blobs and manifest, the
referrers fallback tag when the registry has no referrers API, and last
the index under each tag. Only the platform manifest needs the layers, and
only the index needs both manifests, so everything of the attestation's
side runs while the (much larger) layer uploads: its blobs, its manifest
(a registry accepts a ``subject`` that is not there yet), the read of the
fallback tag and its update. What is left on the push's critical path is
one manifest PUT more than a plain push: the platform manifest, then the
index.

Whether the registry has the referrers API is learnt from its answer to the
attestation manifest's PUT (``OCI-Subject``). Waiting for that answer
before reading the fallback tag would add a round trip to the chain, so
the tag is read alongside, unless this client already saw the registry
answer ``OCI-Subject`` (the daemon keeps one client, so from its second
push on a registry with the API is never asked for the tag).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from scratchd.image.attest import AttestedImage
from scratchd.image.types import Blob, Image
from scratchd.registry.counts import Counts, tally
from scratchd.registry.referrers import read_fallback_tag, referrer_descriptor, write_fallback_tag
from scratchd.registry.retry import RetryPolicy
from scratchd.registry.transport import Transport
from scratchd.registry.upload import Target

PushBlobs = Callable[[Target, Sequence[Blob], Collection[str]], Counts]
PutManifest = Callable[[Target, Image, str], str]  # returns the OCI-Subject answered


class HostSet:
    """Registries a client learnt something of, e.g. "answered ``OCI-Subject``"; thread-safe.

    A daemon keeps one client, so what one push learns of a registry spares
    every later push the request that found it out.
    """

    def __init__(self) -> None:
        self._hosts: set[str] = set()
        self._lock = threading.Lock()

    def add(self, host: str) -> None:
        with self._lock:
            self._hosts.add(host)

    def __contains__(self, host: object) -> bool:
        with self._lock:
            return host in self._hosts


class AttestationPush:
    """Started with :meth:`start`; :meth:`manifest_pushed` before the index; :meth:`finish`."""

    def __init__(
        self,
        side: ThreadPoolExecutor,
        transport: Transport,
        retry: RetryPolicy,
        memory: HostSet,  # the registries with the referrers API
    ) -> None:
        self._side, self._transport, self._retry, self._memory = side, transport, retry, memory
        self._manifest: Future[tuple[str, Counts]] | None = None
        self._referrers: Future[str] | None = None

    def start(
        self,
        target: Target,
        image: AttestedImage,
        push_blobs: PushBlobs,
        put_manifest: PutManifest,
    ) -> None:
        attestation, platform = image.attestation, image.image.digest
        current: Future[bytes | None] | None = None
        if target.host not in self._memory:
            args = (self._transport, self._retry, target, platform)
            current = self._side.submit(read_fallback_tag, *args)

        def manifest() -> tuple[str, Counts]:
            small = {b.descriptor.digest for b in attestation.blobs()}
            counts = push_blobs(target, attestation.blobs(), small)
            return put_manifest(target, attestation, attestation.digest), counts

        def referrers() -> str:
            assert self._manifest is not None
            subject, _ = self._manifest.result()
            if subject == platform:
                self._memory.add(target.host)
                return "referrers API"
            index = current.result() if current is not None else None
            if current is None:  # the registry had the API before and lost it: read now
                index = read_fallback_tag(self._transport, self._retry, target, platform)
            descriptor = referrer_descriptor(
                attestation.manifest, attestation.media_type, attestation.digest
            )
            args = (self._transport, self._retry, target, platform, index, descriptor)
            return f"tag {write_fallback_tag(*args)}"

        self._manifest = self._side.submit(manifest)
        self._referrers = self._side.submit(referrers)

    def manifest_pushed(self) -> None:
        """Wait until the attestation manifest is in (an index may then name it)."""
        if self._manifest is not None:
            self._manifest.result()

    def finish(self) -> tuple[str, Counts]:
        """How the attestation became findable (``""`` when none was pushed) and its counts."""
        if self._manifest is None or self._referrers is None:
            return "", tally(())
        return self._referrers.result(), self._manifest.result()[1]
