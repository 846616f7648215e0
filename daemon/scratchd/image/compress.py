"""Layer compressors: chunks in, compressed bytes out, in order, off the main thread.

gzip is compressed the way pigz does it: the tar stream is cut into fixed
1 MiB blocks, each deflated on its own (primed with the previous block's
last 32 KiB as dictionary, so the ratio barely suffers) and ended with a
sync flush; the pieces concatenate into one ordinary gzip member. Because
block boundaries depend only on the data, the output is byte-identical
whatever the number of threads, and every core helps: compression is where
a bake spends its time.

zstd keeps one stream with fixed parameters on a single worker thread
(its frame cannot be cut the same way without changing the bytes).
"""

from __future__ import annotations

import os
import struct
import zlib
from concurrent.futures import Future, ThreadPoolExecutor

Buffer = bytes | memoryview

WINDOW = 32 * 1024
ZSTD_LEVEL = 3
_OS_UNIX = 3


class GzipBlocks:
    """A deterministic gzip member compressed by a pool of threads."""

    def __init__(self, level: int, workers: int | None = None) -> None:
        self._level = level
        self._pool = ThreadPoolExecutor(workers or _cpus(), thread_name_prefix="gzip-block")
        self._dictionary = b""
        self._crc = 0
        self._size = 0

    def header(self) -> bytes:
        """mtime 0, no name, fixed OS byte: nothing varies between runs or hosts."""
        xfl = 4 if self._level == 1 else 2 if self._level == 9 else 0
        return b"\x1f\x8b\x08\x00" + b"\0\0\0\0" + bytes([xfl, _OS_UNIX])

    def submit(self, block: Buffer) -> Future[bytes]:
        """Compress one full block (not the last) on a worker."""
        return self._pool.submit(self._deflate, block, self._next_dictionary(block), False)

    def finish(self, tail: Buffer) -> bytes:
        """The last (possibly empty) piece, the final block bit, and the gzip trailer."""
        last = self._deflate(tail, self._next_dictionary(tail), True)
        return last + struct.pack("<II", self._crc, self._size & 0xFFFFFFFF)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _next_dictionary(self, block: Buffer) -> bytes:
        """Runs on the caller's thread, in stream order: CRC, size and dictionary chain."""
        dictionary = self._dictionary
        self._crc = zlib.crc32(block, self._crc)
        self._size += len(block)
        self._dictionary = (dictionary + bytes(block))[-WINDOW:]
        return dictionary

    def _deflate(self, block: Buffer, dictionary: bytes, last: bool) -> bytes:
        args = (self._level, zlib.DEFLATED, -15, 8, zlib.Z_DEFAULT_STRATEGY)
        deflate = zlib.compressobj(*args, dictionary) if dictionary else zlib.compressobj(*args)
        return deflate.compress(block) + deflate.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


class ZstdStream:
    """One zstd frame with fixed parameters, compressed on one worker thread."""

    def __init__(self) -> None:
        import zstandard

        params = zstandard.ZstdCompressionParameters.from_level(
            ZSTD_LEVEL, write_checksum=True, write_content_size=False, threads=0
        )
        self._stream = zstandard.ZstdCompressor(compression_params=params).compressobj()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="zstd")

    def header(self) -> bytes:
        return b""

    def submit(self, block: Buffer) -> Future[bytes]:
        return self._pool.submit(self._stream.compress, bytes(block))

    def finish(self, tail: Buffer) -> bytes:
        return self._pool.submit(self._finish, bytes(tail)).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _finish(self, tail: bytes) -> bytes:
        return self._stream.compress(tail) + self._stream.flush()


def _cpus() -> int:
    try:
        return max(1, min(4, len(os.sched_getaffinity(0))))
    except AttributeError:
        return max(1, min(4, os.cpu_count() or 1))
