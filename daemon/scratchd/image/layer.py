"""One deterministic, compressed layer blob, streamed from a directory to a file.

The layer is produced in a single pass and never held whole in memory: the
tar stream is cut into 1 MiB blocks; this thread reads files, hashes the
uncompressed bytes (the ``diff_id``), hands blocks to the compressor's
threads (:mod:`scratchd.image.compress`), then hashes the compressed bytes
(the blob digest) and writes them in order. zlib, zstd, hashlib and file
I/O release the GIL on large buffers, so reading, hashing and compressing
overlap like ``tar | gzip | sha256sum``, and a bounded number of blocks in
flight keeps memory flat whatever the layer's size.

Reproducibility rules (see DESIGN.md, "Image builder"): PAX tar (long and
non-UTF-8 names are stored exactly, in ``path``/``linkpath`` records, with
``hdrcharset=BINARY`` for bytes that are not UTF-8); uid/gid 0; empty user
and group names; every mtime = ``created``; no atime/ctime records; the gzip
header has mtime 0 and no file name; zstd uses fixed parameters.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
import tempfile
import zlib
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scratchd.errors import ImageError, InfrastructureError, UnsupportedFileError
from scratchd.image import tree
from scratchd.image.compress import GzipBlocks, ZstdStream
from scratchd.image.inventory import FileDigest, Inventory

CHUNK = 1 << 20  # part of the gzip output's identity: changing it changes digests
_IN_FLIGHT = 6  # blocks being compressed: memory stays around 2 x 6 MiB
_TAR_TYPES = {
    tree.FILE: tarfile.REGTYPE,
    tree.DIRECTORY: tarfile.DIRTYPE,
    tree.SYMLINK: tarfile.SYMTYPE,
    tree.HARDLINK: tarfile.LNKTYPE,
}


@dataclass(frozen=True)
class LayerResult:
    """Where the blob went and what identifies it."""

    path: Path
    digest: str  # sha256 of the compressed blob
    diff_id: str  # sha256 of the uncompressed tar
    size: int


def write_layer(
    root: Path,
    blob_dir: Path,
    *,
    created: int,
    compression: str,
    level: int,
    limits: tree.Limits | None = None,
    inventory: Inventory | None = None,
) -> LayerResult:
    """Stream ``root`` as a layer into ``blob_dir/<hex digest>``, within ``limits``.

    ``inventory``, when given, gets every regular file's checksums on the way.
    """
    fd, tmp = _temp_file(blob_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            sink = _CompressingSink(out, _compressor(compression, level))
            try:
                _write_tar(root, sink, created, limits or tree.Limits(), inventory)
                digest, diff_id, size = sink.close()
            finally:
                sink.abort()
        final = blob_dir / digest.removeprefix("sha256:")
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return LayerResult(final, digest, diff_id, size)


def _temp_file(blob_dir: Path) -> tuple[int, str]:
    try:
        fd, tmp = tempfile.mkstemp(prefix=".layer-", dir=blob_dir)
    except OSError as exc:
        raise ImageError(f"{blob_dir}: cannot create layer file: {exc.strerror}") from None
    os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide blobs from a registry or docker
    return fd, tmp


def _write_tar(
    root: Path,
    sink: _CompressingSink,
    created: int,
    limits: tree.Limits,
    inventory: Inventory | None,
) -> None:
    deadline = limits.deadline()
    for entry in tree.walk(root, limits, deadline):
        sink.write(_header(entry, created))
        if entry.kind == tree.FILE:
            digest = FileDigest(entry.size) if inventory is not None else None
            if entry.size:
                _copy_file(entry, sink, deadline, limits, digest)  # while the walk holds dir_fd
            if inventory is not None and digest is not None:
                inventory.add(entry.name, entry.mode, digest)
        elif entry.kind == tree.HARDLINK and inventory is not None:
            inventory.link(entry.name, entry.mode, entry.link)
    sink.write(b"\0" * (2 * tarfile.BLOCKSIZE))  # end-of-archive marker


def _header(entry: tree.Entry, created: int) -> bytes:
    info = tarfile.TarInfo(entry.name)
    info.type = _TAR_TYPES[entry.kind]
    info.mode = entry.mode
    info.size = entry.size if entry.kind == tree.FILE else 0
    info.linkname = entry.link
    info.mtime = created
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def _copy_file(
    entry: tree.Entry,
    sink: _CompressingSink,
    deadline: float | None = None,
    limits: tree.Limits | None = None,
    digest: FileDigest | None = None,
) -> None:
    """Copy exactly the size the header announced; a file that changes size fails."""
    remaining = entry.size
    with _open_regular(entry) as f:
        while remaining:
            tree.check_deadline(deadline, limits or tree.Limits())
            try:
                chunk = f.read(min(CHUNK, remaining))
            except OSError as exc:
                raise UnsupportedFileError(f"{entry.source}: cannot read: {exc.strerror}") from None
            if not chunk:
                raise ImageError(f"{entry.source}: file shrank while it was being baked")
            remaining -= len(chunk)
            sink.write(chunk)
            if digest is not None:
                digest.update(chunk)
    padding = -entry.size % tarfile.BLOCKSIZE
    if padding:
        sink.write(b"\0" * padding)


def _open_regular(entry: tree.Entry) -> BinaryIO:
    """Open without following a symlink or blocking on a FIFO swapped in since the walk.

    Relative to the fd of the directory the walk found it in, so no path
    component is resolved again (one may have become a link since).
    """
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        if entry.dir_fd is None:
            fd = os.open(entry.source, flags)
        else:
            fd = os.open(entry.base, flags, dir_fd=entry.dir_fd)
    except PermissionError as exc:
        raise UnsupportedFileError(f"{entry.source}: unreadable: {exc.strerror}") from None
    except OSError as exc:
        raise UnsupportedFileError(f"{entry.source}: cannot open: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageError(f"{entry.source}: replaced by another kind of file while baking")
    return os.fdopen(fd, "rb", buffering=0)


def _compressor(compression: str, level: int) -> GzipBlocks | ZstdStream:
    if compression == "gzip":
        return GzipBlocks(level)
    if compression == "zstd":
        return ZstdStream()
    raise ImageError(f"unknown compression {compression!r} (want gzip or zstd)")


class _CompressingSink:
    """Tar bytes in, cut into fixed blocks; compressed blocks out to a file, in order.

    Fixed block boundaries (not the sizes callers happen to write) are what
    keep the parallel gzip output identical from run to run.
    """

    def __init__(self, out: BinaryIO, compressor: GzipBlocks | ZstdStream) -> None:
        self._out, self._compressor = out, compressor
        self._diff, self._blob = hashlib.sha256(), hashlib.sha256()
        self._size = 0
        self._pending = bytearray()
        self._inflight: deque[Future[bytes]] = deque()
        self._emit(compressor.header())

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        if self._pending:
            need = CHUNK - len(self._pending)
            self._pending += view[:need]
            view = view[need:]
            if len(self._pending) < CHUNK:
                return
            self._send(bytes(self._pending))
            self._pending.clear()
        while len(view) >= CHUNK:
            self._send(view[:CHUNK])
            view = view[CHUNK:]
        self._pending += view

    def close(self) -> tuple[str, str, int]:
        """Finish the stream; returns (digest, diff_id, compressed size).

        The tail is compressed here while the workers still hold the blocks
        before it (its dictionary is known already), not after them: for a
        layer of a block or two, that wait was most of the bake.
        """
        tail = bytes(self._pending)
        self._diff.update(tail)
        try:
            last = self._compressor.finish(tail)
        except zlib.error as exc:
            raise ImageError(f"compressing the layer failed: {exc}") from exc
        while self._inflight:
            self._emit(self._result(self._inflight.popleft()))
        self._emit(last)
        self.abort()
        return f"sha256:{self._blob.hexdigest()}", f"sha256:{self._diff.hexdigest()}", self._size

    def abort(self) -> None:
        """Stop the compression threads; safe to call more than once."""
        self._compressor.close()

    def _send(self, block: bytes | memoryview) -> None:
        self._diff.update(block)
        self._inflight.append(self._compressor.submit(block))
        while len(self._inflight) > _IN_FLIGHT:
            self._emit(self._result(self._inflight.popleft()))

    @staticmethod
    def _result(future: Future[bytes]) -> bytes:
        try:
            return future.result()
        except Exception as exc:
            raise ImageError(f"compressing the layer failed: {exc}") from exc

    def _emit(self, data: bytes) -> None:
        """Disk full or an I/O error is not the input's fault: an infrastructure error."""
        if not data:
            return
        self._blob.update(data)
        try:
            self._out.write(data)
        except OSError as exc:
            raise InfrastructureError(f"writing the layer failed: {exc.strerror or exc}") from exc
        self._size += len(data)
