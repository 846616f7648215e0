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
from collections.abc import Iterator
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
        self._partial = {STDOUT: b"", STDERR: b""}
        self.said: list[str] = []  # lines before the last marker, for error messages

    def send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise BackendError(f"sending to the pipeline container failed: {exc}") from None

    def send_file(self, fileobj: IO[bytes]) -> None:
        while chunk := fileobj.read(_CHUNK):
            self.send(chunk)

    def marker(self) -> str:
        """The next ``scratchd:WORD`` line's word; other lines are kept in :attr:`said`."""
        self.said = []
        for stream, data in self.frames():
            text = self._partial[stream] + data
            *lines, self._partial[stream] = text.split(b"\n")
            for raw in lines:
                line = raw.decode(errors="replace").rstrip("\r")
                if line.startswith(MARKER):
                    return line.removeprefix(MARKER)
                self.said.append(line)
        raise BackendError(
            "the pipeline container ended before it was ready"
            + (f": {' / '.join(self.said[-3:])}" if self.said else "")
        )

    def copy_stdout(self, target: IO[bytes]) -> str:
        """Write stdout to ``target`` until the main process ends; returns its stderr."""
        errors = b""
        for stream, data in self.frames():
            if stream == STDOUT:
                target.write(data)
            elif len(errors) < 4096:
                errors += data
        return errors.decode(errors="replace").strip()

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """``(stream, data)`` until the connection ends (the main process exited)."""
        while (header := self._read(8)) is not None:
            size = int.from_bytes(header[4:8], "big")
            data = self._read(size) if size else b""
            if data is None:
                raise BackendError("the connection to the pipeline container broke mid-frame")
            yield header[0], data

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
