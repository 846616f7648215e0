"""Talking to a container's main process over one ``attach`` connection.

Docker's archive API (``put_archive``/``get_archive``) re-executes the
engine's own binary to chroot into the container, and every ``exec`` starts
a runc process: on a busy engine each costs 80 to 150 ms whatever the size
of the data. Writing to the main process's stdin and reading its stdout
through an attach connection starts no process on the engine at all: it is
one hijacked HTTP connection, so moving files this way costs little more
than the bytes.

With no tty, docker multiplexes stdout and stderr on the connection: each
frame is an 8-byte header (stream, three zero bytes, big-endian length)
and the data. The docker SDK's own frame reader polls the file descriptor
before each read, which has no timeout and waits forever for data that TLS
already decrypted into its buffer; this one reads with the socket's timeout.
"""

from __future__ import annotations

import contextlib
import socket
from typing import IO

from scratchd.errors import BackendError

STDOUT, STDERR = 1, 2
_CHUNK = 1024 * 1024
#: Lines of the main process that say where the conversation is ("scratchd:ready").
MARKER = "scratchd:"


class Attached:
    """One attach connection to ``container``: stdin, stdout and stderr.

    Attach before the container starts to miss none of its output. Every
    socket failure or timeout is a :class:`BackendError` (the engine's fault).
    """

    def __init__(self, api, container: str, timeout: float) -> None:
        params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
        self._io = api.attach_socket(container, params=params)
        # TLS: the SDK hands back the SSL socket; a unix socket comes as SocketIO.
        self._sock = getattr(self._io, "_sock", self._io)
        self._sock.settimeout(timeout)
        self._pending = {STDOUT: bytearray(), STDERR: bytearray()}
        self.said: list[str] = []  # stdout lines before the last marker, for error messages

    @property
    def errors(self) -> str:
        """What the main process wrote to stderr so far (the first 4 KiB)."""
        return self._pending[STDERR][:4096].decode(errors="replace").strip()

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise BackendError(f"sending to the pipeline container failed: {exc}") from None

    def send_file(self, fileobj: IO[bytes]) -> None:
        while chunk := fileobj.read(_CHUNK):
            self.send(chunk)

    def marker(self) -> str:
        """The next stdout line ``scratchd:WORDS``'s words; other lines go to :attr:`said`.

        NUL bytes before a line are skipped: they are a tar's end-of-archive padding.
        """
        self.said = []
        out = self._pending[STDOUT]
        while True:
            while (end := out.find(b"\n")) >= 0:
                line = out[:end].lstrip(b"\0").decode(errors="replace").rstrip("\r")
                del out[: end + 1]
                if line.startswith(MARKER):
                    return line.removeprefix(MARKER)
                self.said.append(line)
            if not self._pump():
                raise BackendError(
                    "the pipeline container ended before it was ready"
                    + (f": {' / '.join(self.said[-3:])}" if self.said else "")
                )

    def stdout(self) -> StdoutReader:
        """A file to read stdout from (a tar stream); :meth:`StdoutReader.unread` gives back."""
        return StdoutReader(self)

    def _pump(self) -> bool:
        """Read one frame into its stream's pending bytes; False at the end of the stream."""
        header = self._read(8)
        if header is None:
            return False
        size = int.from_bytes(header[4:8], "big")
        data = self._read(size) if size else b""
        if data is None:
            raise BackendError("the connection to the pipeline container broke mid-frame")
        self._pending.get(header[0], self._pending[STDERR]).extend(data)
        return True

    def close(self) -> None:
        """End the connection now, so the engine stops copying output to it.

        ``close()`` alone leaves the descriptor open while the HTTP response
        still holds a file object on it; the engine would keep writing to a
        connection nobody reads, and once its buffers filled the container's
        stdout (and every other attach) would stall.
        """
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        for part in (self._sock, self._io):
            with contextlib.suppress(OSError):
                part.close()

    def _read(self, size: int) -> bytes | None:
        """Exactly ``size`` bytes; None at a clean end of the stream."""
        data = b""
        while len(data) < size:
            try:
                chunk = self._sock.recv(min(size - len(data), _CHUNK))
            except OSError as exc:  # a timeout included: the engine stopped answering
                raise BackendError(f"reading from the pipeline container failed: {exc}") from None
            if not chunk:
                if data:
                    raise BackendError("the connection to the pipeline container broke")
                return None
            data += chunk
        return data


class StdoutReader:
    """The main process's stdout as a file, for ``tarfile``'s stream mode.

    ``read`` hands out what has arrived (at most ``size``), so a reader that
    stops at the tar's end-of-archive never waits for more. What it read
    beyond the point it stopped at can be given back with :meth:`unread`.
    """

    _KEEP = 64 * 1024  # more than tarfile ever reads ahead

    def __init__(self, channel: Attached) -> None:
        self._channel = channel
        self.position = 0
        self._tail = bytearray()

    def read(self, size: int = -1) -> bytes:
        pending = self._channel._pending[STDOUT]
        while not pending and self._channel._pump():
            pending = self._channel._pending[STDOUT]
        size = len(pending) if size < 0 else min(size, len(pending))
        data = bytes(pending[:size])
        del pending[:size]
        self.position += size
        self._tail += data
        del self._tail[: -self._KEEP]
        return data

    def unread(self, since: int) -> None:
        """Give back everything read after position ``since`` (it comes out again)."""
        back = self.position - since
        if not 0 <= back <= len(self._tail):
            raise BackendError("the output tar was read past what can be given back")
        if back:
            self._channel._pending[STDOUT][:0] = self._tail[-back:]
            del self._tail[-back:]
            self.position = since
