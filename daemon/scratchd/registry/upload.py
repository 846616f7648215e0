"""Getting one blob into a repository: HEAD, mount, or upload.

The cheapest way wins: a blob the repository already has is skipped after a
``HEAD``; one the registry holds in another repository is mounted
(``POST ?mount=&from=``); anything else is uploaded, monolithically
(``POST`` then ``PUT ?digest=``) or, for large blobs or when the registry
refuses a big body with 413, in ``PATCH`` chunks. Bodies stream from disk in
large blocks and are never read whole. A broken upload is retried from a
fresh ``POST``, because the registry may have dropped the half-written
session.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

from scratchd.errors import RegistryError
from scratchd.image.types import Blob
from scratchd.registry.http import Response, Stream
from scratchd.registry.retry import RetryPolicy
from scratchd.registry.transport import Transport

_BLOCK = 1 << 20  # bytes per read(): big blocks keep Python out of the way of the socket
_SENDFILE_STEP = 8 << 20
_OCTETS = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True)
class ProgressEvent:
    """Where one blob's push stands; ``state`` is uploading/skipped/mounted/done."""

    digest: str
    size: int
    done: int
    state: str


Progress = Callable[[ProgressEvent], None]


class PushAborted(Exception):
    """Another blob of the same push failed: stop sending this one."""


@dataclass(frozen=True)
class Target:
    """The repository being pushed to, as the uploader needs it."""

    host: str
    base: str  # https://host
    repository: str

    def url(self, suffix: str) -> str:
        return f"{self.base}/v2/{self.repository}/{suffix}"


class BlobUploader:
    """Skips, mounts or uploads blobs; shared by a push's worker threads."""

    def __init__(
        self,
        transport: Transport,
        policy: RetryPolicy,
        *,
        chunk_threshold: int,
        chunk_size: int,
        progress: Progress | None = None,
        abort: threading.Event | None = None,
    ) -> None:
        self._transport = transport
        self._policy = policy
        self._threshold = chunk_threshold
        self._chunk = chunk_size
        self._progress = progress or (lambda event: None)
        self._abort = abort or threading.Event()

    def _send(self, target: Target, method: str, url: str, **kwargs: Any) -> Response:
        return self._transport.send(
            method, url, target.host, repository=target.repository, **kwargs
        )

    def exists(self, target: Target, blob: Blob) -> bool:
        digest = blob.descriptor.digest
        url = target.url(f"blobs/{digest}")
        send = lambda: self._send(target, "HEAD", url, ok=(200, 404))  # noqa: E731
        response = self._policy.call(send, f"HEAD blob {digest[:19]}")
        response.close()
        return response.status_code == 200

    def mount(self, target: Target, blob: Blob, source: str) -> str | None:
        """``"mounted"``, an upload URL the registry opened instead, or None."""
        query = urlencode({"mount": blob.descriptor.digest, "from": source})
        try:
            response = self._send(
                target,
                "POST",
                target.url(f"blobs/uploads/?{query}"),
                ok=(201, 202),
            )
        except RegistryError:
            return None  # any refusal: fall back to a plain upload
        response.close()
        if response.status_code == 201:
            return "mounted"
        return _location(response)

    def upload(self, target: Target, blob: Blob, opened: str | None = None) -> int:
        """Upload ``blob``, retrying from a fresh session; returns its size."""
        first = [opened] if opened else []
        desc = blob.descriptor
        self._policy.call(
            lambda: self._upload_once(target, blob, first.pop() if first else None),
            f"upload of blob {desc.digest[:19]}",
        )
        self._progress(ProgressEvent(desc.digest, desc.size, desc.size, "done"))
        return desc.size

    def _upload_once(self, target: Target, blob: Blob, location: str | None) -> None:
        if location is None:
            location = self._start_upload(target)
        if blob.descriptor.size > self._threshold:
            location = self._patch_chunks(target, blob, location)
            self._finish(target, blob, location, None)
            return
        body = lambda: _Body(blob, 0, blob.descriptor.size, self._report(blob, 0), self._abort)  # noqa: E731
        self._finish(target, blob, location, body)

    def _finish(
        self, target: Target, blob: Blob, location: str, body: Callable[[], Stream] | None
    ) -> None:
        url = _with_query(location, digest=blob.descriptor.digest)
        headers = {**_OCTETS, "Content-Length": "0"} if body is None else _OCTETS
        response = self._send(
            target,
            "PUT",
            url,
            ok=(201, 413),
            headers=headers,
            body=body,
        )
        response.close()
        if response.status_code == 413:  # body too large for one request: go chunked
            location = self._patch_chunks(target, blob, self._start_upload(target))
            self._finish(target, blob, location, None)

    def _start_upload(self, target: Target) -> str:
        """POST a new upload session; returns its Location."""
        response = self._send(
            target,
            "POST",
            target.url("blobs/uploads/"),
            ok=(202,),
        )
        response.close()
        return _location(response)

    def _patch_chunks(self, target: Target, blob: Blob, location: str) -> str:
        size, start = blob.descriptor.size, 0
        while start < size:
            length = min(self._chunk, size - start)
            headers = {**_OCTETS, "Content-Range": f"{start}-{start + length - 1}"}
            report = self._report(blob, start)
            body = lambda s=start, n=length, r=report: _Body(blob, s, n, r, self._abort)  # noqa: E731
            response = self._send(
                target,
                "PATCH",
                location,
                ok=(202,),
                headers=headers,
                body=body,
            )
            response.close()
            location = _location(response)
            start += length
        return location

    def _report(self, blob: Blob, offset: int) -> Callable[[int], None]:
        desc, sent = blob.descriptor, [offset]

        def on_bytes(count: int) -> None:
            sent[0] += count
            self._progress(ProgressEvent(desc.digest, desc.size, sent[0], "uploading"))

        return on_bytes


class _Body:
    """A slice of a blob file: ``len()`` is the Content-Length, ``read()`` streams.

    ``read`` returns blocks of at least 1 MiB whatever size the HTTP library
    asks for, which keeps a 200 MB upload from becoming thousands of small writes.
    """

    def __init__(
        self,
        blob: Blob,
        start: int,
        length: int,
        on_bytes: Callable[[int], None],
        abort: threading.Event,
    ) -> None:
        self._file = blob.open()
        self._file.seek(start)
        self._offset = start
        self._left = length
        self._on_bytes = on_bytes
        self._abort = abort

    def __len__(self) -> int:
        return self._left

    def read(self, size: int = -1) -> bytes:
        if self._abort.is_set():
            raise PushAborted
        want = self._left if size is None or size < 0 else min(max(size, _BLOCK), self._left)
        data = self._file.read(want)
        self._offset += len(data)
        self._left -= len(data)
        if data:
            self._on_bytes(len(data))
        return data

    def send_to(self, sock: socket.socket) -> None:
        """Zero-copy ``sendfile`` in 8 MiB steps (progress and abort between steps).

        Used by :mod:`.http` on plain sockets, so a big upload costs little CPU
        even on a busy machine (in-memory blobs fall back to plain sends inside
        ``socket.sendfile``).
        """
        while self._left > 0:
            if self._abort.is_set():
                raise PushAborted
            sent = sock.sendfile(self._file, self._offset, min(self._left, _SENDFILE_STEP))
            if sent == 0:
                raise ConnectionError("connection closed while sending the blob")
            self._offset += sent
            self._left -= sent
            self._on_bytes(sent)

    def close(self) -> None:
        self._file.close()


def _location(response: Response) -> str:
    """The next URL of an upload session; relative ``Location`` is resolved.

    A location on another host is allowed (registries hand uploads to
    storage front-ends), but the transport sends it no credentials; one on
    plain http for an https registry is refused, since the blob and the
    session token would cross the network in clear.
    """
    location = response.headers.get("Location")
    where = f"{urlsplit(response.url).netloc}: {response.method} {urlsplit(response.url).path}"
    if not location:
        raise RegistryError(
            f"{where}: answered without a Location header", status=response.status_code
        )
    target = urljoin(response.url, location)
    scheme = urlsplit(target).scheme.lower()
    if scheme not in ("http", "https") or (
        urlsplit(response.url).scheme == "https" and scheme != "https"
    ):
        raise RegistryError(
            f"{where}: refusing upload location on {scheme}://{urlsplit(target).netloc} "
            "(an https registry must not send uploads to plain http)",
            status=response.status_code,
        )
    return target


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    extra = urlencode(params)
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))
