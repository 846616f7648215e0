"""journald's native protocol: one datagram per entry on a Unix socket.

Why not the ``systemd-python`` binding: it is a C extension that needs
libsystemd-dev and a compiler (PyPI has no wheels), while the protocol is
small and documented (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/). What it
says, and what this module does:

* an entry is a sequence of fields; ``NAME=value\\n`` when the value has no
  newline, else ``NAME\\n`` + the value's length as 64-bit little endian +
  the raw bytes + ``\\n`` — that form is binary safe, so step output with
  NULs or invalid UTF-8 goes in unchanged;
* field names are ``A-Z``, ``0-9`` and ``_``, at most 64 characters, not
  starting with a digit or ``_`` (those are trusted fields journald adds);
* an entry too large for one datagram is written to a sealed memfd whose
  descriptor is passed with ``SCM_RIGHTS`` and an empty payload.
"""

from __future__ import annotations

import array
import contextlib
import errno
import fcntl
import os
import re
import struct
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

SOCKET_PATH = "/run/systemd/journal/socket"

_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
# errnos meaning "this datagram is too big", after which sd-journal uses a memfd too.
_TOO_BIG = {errno.EMSGSIZE, errno.ENOBUFS}
# What sd-journal asks for; the kernel caps it at net.core.wmem_max.
_SNDBUF = 8 * 1024 * 1024
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL


def valid_field_name(name: str) -> bool:
    """Whether journald accepts ``name`` as a (non-trusted) field name."""
    return _FIELD_NAME.fullmatch(name) is not None


def to_bytes(value: object) -> bytes:
    """A field value as bytes, keeping the original bytes of binary step output.

    Output decoded with ``surrogateescape`` gets its raw bytes back; any other
    unencodable text (a lone surrogate) is escaped instead of raising.
    """
    if isinstance(value, bytes):
        return value
    text = str(value)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


def encode(fields: Iterable[tuple[str, object]]) -> bytes:
    """Serialise fields into one journal entry (see the module docstring)."""
    out = bytearray()
    for name, value in fields:
        if not valid_field_name(name):
            raise ValueError(f"invalid journal field name {name!r}")
        data = to_bytes(value)
        if b"\n" in data:
            out += name.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += name.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalSocket:
    """A datagram socket to journald; ``send`` raises ``OSError`` on failure.

    Not thread safe by itself: the logging handler calls it under its lock.
    """

    def __init__(self, path: str = SOCKET_PATH, timeout: float = 5.0) -> None:
        self.path = path
        self._timeout = timeout
        self._sock: socket.socket | None = None

    def send(self, fields: Iterable[tuple[str, object]]) -> None:
        payload = encode(fields)
        sock = self._socket()
        try:
            sock.sendto(payload, self.path)
        except OSError as exc:
            if exc.errno not in _TOO_BIG:
                raise
            self._send_memfd(sock, payload)

    def _socket(self) -> socket.socket:
        import socket  # at the first entry: every CLI command loads this module, few log

        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # A smaller buffer only means the memfd path is taken sooner.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
            # A hung journald must not hang the daemon: give up and fall back.
            sock.settimeout(self._timeout)
            self._sock = sock
        return self._sock

    def _send_memfd(self, sock: socket.socket, payload: bytes) -> None:
        """The protocol's large-entry path: a sealed memfd passed by descriptor."""
        fd = os.memfd_create("scratchd-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
            import socket  # imported by _socket() already; named here for its constants

            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))]
            sock.sendmsg([], rights, 0, self.path)
        finally:
            os.close(fd)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def stderr_is_journal(environ: dict[str, str] | None = None, fd: int = 2) -> bool:
    """Whether ``$JOURNAL_STREAM`` names the file open on ``fd`` (stderr).

    systemd sets ``JOURNAL_STREAM=dev:inode`` for a service whose stdout or
    stderr is connected to the journal; a child whose stderr was redirected
    inherits the variable but not the stream, hence the comparison.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, _, ino = value.partition(":")
    try:
        st = os.fstat(fd)
        return (int(dev), int(ino)) == (st.st_dev, st.st_ino)
    except (OSError, ValueError):
        return False
