"""One deterministic, compressed layer blob, streamed from a directory to a file.

The layer is produced in a single pass and never held whole in memory: the
tar stream is cut into ~1 MiB chunks; this thread reads files and hashes
the uncompressed bytes (the ``diff_id``), while a second thread compresses,
hashes the compressed bytes (the blob digest) and writes them. zlib, zstd,
hashlib and file I/O all release the GIL on large buffers, so the two
halves really run side by side, much like ``tar | gzip | sha256sum``.
A bounded queue keeps memory flat whatever the layer's size.

Reproducibility rules (see DESIGN.md, "Image builder"): PAX tar (long and
non-UTF-8 names are stored exactly, in ``path``/``linkpath`` records, with
``hdrcharset=BINARY`` for bytes that are not UTF-8); uid/gid 0; empty user
and group names; every mtime = ``created``; no atime/ctime records; the gzip
header has mtime 0 and no file name; zstd uses fixed parameters.
"""

from __future__ import annotations

import hashlib
import os
import queue
import stat
import tarfile
import tempfile
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from scratchd.errors import ImageError, InfrastructureError, UnsupportedFileError
from scratchd.image import tree

CHUNK = 1 << 20
_QUEUE_DEPTH = 4  # chunks in flight: memory stays under ~(depth + 3) MiB
_TAR_TYPES = {
    tree.FILE: tarfile.REGTYPE,
    tree.DIRECTORY: tarfile.DIRTYPE,
    tree.SYMLINK: tarfile.SYMTYPE,
    tree.HARDLINK: tarfile.LNKTYPE,
}
ZSTD_LEVEL = 3


@dataclass(frozen=True)
class LayerResult:
    """Where the blob went and what identifies it."""

    path: Path
    digest: str  # sha256 of the compressed blob
    diff_id: str  # sha256 of the uncompressed tar
    size: int


def write_layer(
    root: Path, blob_dir: Path, *, created: int, compression: str, level: int
) -> LayerResult:
    """Stream ``root`` as a layer into ``blob_dir/<hex digest>``."""
    fd, tmp = _temp_file(blob_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            sink = _CompressingSink(out, _compressor(compression, level))
            try:
                _write_tar(root, sink, created)
            finally:
                digest, diff_id, size = sink.close()
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


def _write_tar(root: Path, sink: _CompressingSink, created: int) -> None:
    for entry in tree.walk(root):
        sink.write(_header(entry, created))
        if entry.kind == tree.FILE and entry.size:
            _copy_file(entry, sink)
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


def _copy_file(entry: tree.Entry, sink: _CompressingSink) -> None:
    """Copy exactly the size the header announced; a file that changes size fails."""
    remaining = entry.size
    with _open_regular(entry) as f:
        while remaining:
            try:
                chunk = f.read(min(CHUNK, remaining))
            except OSError as exc:
                raise UnsupportedFileError(f"{entry.source}: cannot read: {exc.strerror}") from None
            if not chunk:
                raise ImageError(f"{entry.source}: file shrank while it was being baked")
            remaining -= len(chunk)
            sink.write(chunk)
    padding = -entry.size % tarfile.BLOCKSIZE
    if padding:
        sink.write(b"\0" * padding)


def _open_regular(entry: tree.Entry) -> BinaryIO:
    """Open without following a symlink or blocking on a FIFO swapped in since the walk."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(entry.source, flags)
    except PermissionError as exc:
        raise UnsupportedFileError(f"{entry.source}: unreadable: {exc.strerror}") from None
    except OSError as exc:
        raise UnsupportedFileError(f"{entry.source}: cannot open: {exc.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ImageError(f"{entry.source}: replaced by another kind of file while baking")
    return os.fdopen(fd, "rb", buffering=0)


def _compressor(compression: str, level: int):
    if compression == "gzip":
        # wbits=31: gzip wrapper; zlib writes mtime 0, no name, OS=unix: no varying bytes.
        return zlib.compressobj(level, zlib.DEFLATED, 31)
    if compression == "zstd":
        import zstandard

        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL, write_checksum=True, write_content_size=False, threads=0
        )
        return zstandard.ZstdCompressor(compression_params=params).compressobj()
    raise ImageError(f"unknown compression {compression!r} (want gzip or zstd)")


class _CompressingSink:
    """Tar bytes in; compressed bytes out to a file, via a worker thread."""

    def __init__(self, out: BinaryIO, compressor) -> None:
        self._out, self._compressor = out, compressor
        self._diff, self._blob = hashlib.sha256(), hashlib.sha256()
        self._size = 0
        self._pending = bytearray()
        self._queue: queue.Queue[bytes | None] = queue.Queue(_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="layer-compress", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        if len(data) >= CHUNK:
            self._flush()
            self._send(data)
            return
        self._pending += data
        if len(self._pending) >= CHUNK:
            self._flush()

    def close(self) -> tuple[str, str, int]:
        """Finish the stream; returns (digest, diff_id, compressed size)."""
        self._flush()
        self._queue.put(None)
        self._thread.join()
        self._raise_worker_error()
        return f"sha256:{self._blob.hexdigest()}", f"sha256:{self._diff.hexdigest()}", self._size

    def _flush(self) -> None:
        if self._pending:
            self._send(bytes(self._pending))
            self._pending.clear()

    def _send(self, chunk: bytes) -> None:
        self._raise_worker_error()
        self._diff.update(chunk)
        self._queue.put(chunk)

    def _raise_worker_error(self) -> None:
        """Disk full or an I/O error is not the input's fault: an infrastructure error."""
        exc = self._error
        if isinstance(exc, OSError):
            raise InfrastructureError(f"writing the layer failed: {exc.strerror or exc}") from exc
        if exc is not None:
            raise ImageError(f"compressing the layer failed: {exc}") from exc

    def _drain(self) -> None:
        chunk: bytes | None = b""
        try:
            while (chunk := self._queue.get()) is not None:
                self._emit(self._compressor.compress(chunk))
            self._emit(self._compressor.flush())
        except BaseException as exc:  # handed to the producer thread
            self._error = exc
            while chunk is not None:  # keep unblocking the producer until close()
                chunk = self._queue.get()

    def _emit(self, data: bytes) -> None:
        if data:
            self._blob.update(data)
            self._out.write(data)
            self._size += len(data)
