"""What the registry itself costs a push, so bench/push.py can say where a target stops.

Two measures, both independent of scratchd's client:

- :func:`registry_cpu_seconds`: the registry process's CPU time (every
  thread's, from ``/proc/<pid>/task/*/schedstat``), read around each push.
  On a machine where the registry shares the cores with the client (the
  bench's loopback registry), the extra CPU an attested push makes the
  registry spend, divided by the cores, is time no client can hide.
- :func:`replay_plain` / :func:`replay_attested`: the exact requests of a
  plain and of an attested push (the same blobs, manifests and index, the
  fallback referrers tag read and written) sent by a minimal client:
  ``http.client``, one connection per blob, every request as early as the
  order the registry needs allows, no retries, no auth, no bookkeeping. It
  is how fast those requests can go, whoever sends them.
"""

from __future__ import annotations

import http.client
import os
from concurrent.futures import Executor, Future
from pathlib import Path

from scratchd.image.attest import EMPTY_CONFIG, AttestedImage
from scratchd.image.types import Blob, Image
from scratchd.models import OCI_INDEX
from scratchd.registry.referrers import fallback_tag, merged_index, referrer_descriptor


def registry_cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far (ns-exact where schedstat exists)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return total / 1e9


def replay_plain(host: str, repo: str, image: Image, pool: Executor) -> None:
    """HEAD + POST + PUT per blob (in parallel), then the manifest under ``latest``."""
    blobs = [pool.submit(_blob, host, repo, b, True) for b in image.blobs()]
    connection = _all_done(blobs)[0]  # every blob in before a manifest names it
    _manifest(connection, repo, "latest", image.manifest, image.media_type)


def replay_attested(host: str, repo: str, attested: AttestedImage, pool: Executor) -> None:
    """The attestation's side beside the platform blobs; platform manifest, then the index."""
    side = pool.submit(_attestation_side, host, repo, attested, pool)
    blobs = [pool.submit(_blob, host, repo, b, True) for b in attested.image.blobs()]
    connection = _all_done(blobs)[0]  # every blob in before a manifest names it
    platform = attested.image
    _manifest(connection, repo, platform.digest, platform.manifest, platform.media_type)
    side.result()
    _manifest(connection, repo, "latest", attested.index, attested.media_type)


def _attestation_side(host: str, repo: str, attested: AttestedImage, pool: Executor) -> None:
    """Read the fallback tag while the attestation blobs go up; its manifest; the tag."""
    attestation, tag = attested.attestation, fallback_tag(attested.image.digest)
    current = pool.submit(_get, _connect(host), f"/v2/{repo}/manifests/{tag}")
    blobs = [
        # the empty config is a HEAD once it is there; the statements are new every build
        pool.submit(_blob, host, repo, b, b.descriptor.media_type == EMPTY_CONFIG)
        for b in attestation.blobs()
    ]
    connection = _all_done(blobs)[0]  # every blob in before a manifest names it
    digest = attestation.digest
    _manifest(connection, repo, digest, attestation.manifest, attestation.media_type)
    descriptor = referrer_descriptor(attestation.manifest, attestation.media_type, digest)
    body = merged_index(current.result(), descriptor)
    if body is not None:
        _manifest(connection, repo, tag, body, OCI_INDEX)


Connection = http.client.HTTPConnection


def _all_done(futures: list[Future[Connection]]) -> list[Connection]:
    return [f.result() for f in futures]


def _blob(host: str, repo: str, blob: Blob, head: bool) -> http.client.HTTPConnection:
    connection = _connect(host)
    digest = blob.descriptor.digest
    if head:
        status, _, _ = _send(connection, "HEAD", f"/v2/{repo}/blobs/{digest}")
        if status == 200:
            return connection
    status, location, _ = _send(connection, "POST", f"/v2/{repo}/blobs/uploads/")
    path = location.split(host, 1)[-1]
    with blob.open() as f:
        data = f.read()
    url = f"{path}{'&' if '?' in path else '?'}digest={digest}"
    headers = {"Content-Type": "application/octet-stream"}
    status, _, _ = _send(connection, "PUT", url, data, headers)
    _check(status, 201, url)
    return connection


def _manifest(
    connection: http.client.HTTPConnection, repo: str, ref: str, body: bytes, media_type: str
) -> None:
    url = f"/v2/{repo}/manifests/{ref}"
    status, _, _ = _send(connection, "PUT", url, body, {"Content-Type": media_type})
    _check(status, 201, url)


def _get(connection: http.client.HTTPConnection, url: str) -> bytes | None:
    status, _, body = _send(connection, "GET", url, headers={"Accept": OCI_INDEX})
    return body if status == 200 else None


def _connect(host: str) -> http.client.HTTPConnection:
    name, _, port = host.rpartition(":")
    return http.client.HTTPConnection(name, int(port), timeout=30)


def _send(
    connection: http.client.HTTPConnection,
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    connection.request(method, url, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    return response.status, response.getheader("Location") or "", data


def _check(status: int, want: int, url: str) -> None:
    if status != want:
        raise SystemExit(f"registry answered {status} to {url}")


def cores() -> int:
    return len(os.sched_getaffinity(0))
