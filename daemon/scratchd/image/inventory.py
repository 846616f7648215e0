"""What is in a layer, file by file: checksums, mode and Go build info, for the SBOM.

The bake reads every file's bytes once to write the layer; taking SPDX's
SHA-1 and SHA-256 of them on the way spares the daemon a decompression of
the whole layer after the bake. The hashing itself is not free: on the
seed image (bench/push.py case d) it adds about as much to the bake as
reading the tree again cost. It is also the truth about the image: exactly
the bytes that went into the layer, even if a step's process changes the
tree after the bake. :func:`~scratchd.image.sbom.image_files`
gives the same entries for a layer baked elsewhere.

ELF files are kept in memory one at a time (up to :data:`ELF_LIMIT`) so
:mod:`.gobuildinfo` can list the Go modules they were built from.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from scratchd.image.gobuildinfo import BuildInfo, read_build_info

ELF_LIMIT = 1 << 30  # larger files are listed, not searched for Go build info


@dataclass(frozen=True)
class FileEntry:
    """One regular file (or hard link to one) of the image, as the SBOM lists it."""

    name: str  # "./app"
    mode: int
    sha1: str
    sha256: str
    go: BuildInfo | None = None


class FileDigest:
    """SHA-1, SHA-256 and (for an ELF file) Go build info of one file, fed in chunks."""

    def __init__(self, size: int) -> None:
        self._sha1 = hashlib.sha1()  # noqa: S324 - SPDX 2.3 makes a file's SHA-1 mandatory
        self._sha256 = hashlib.sha256()
        self._size = size
        self._kept: list[bytes] | None = None
        self._first = True

    def update(self, chunk: bytes) -> None:
        if self._first and chunk[:4] == b"\x7fELF" and self._size <= ELF_LIMIT:
            self._kept = []
        self._first = False
        if self._kept is not None:
            self._kept.append(chunk)
        self._sha1.update(chunk)
        self._sha256.update(chunk)

    def entry(self, name: str, mode: int) -> FileEntry:
        go = read_build_info(b"".join(self._kept)) if self._kept else None
        self._kept = None
        return FileEntry(name, mode, self._sha1.hexdigest(), self._sha256.hexdigest(), go)


class Inventory:
    """Collects the entries of one layer as it is written; hard links share their target's."""

    def __init__(self) -> None:
        self._entries: dict[str, FileEntry] = {}

    def add(self, name: str, mode: int, digest: FileDigest) -> None:
        name = member_name(name)
        self._entries[name] = digest.entry(name, mode)

    def link(self, name: str, mode: int, target: str) -> None:
        """A hard link to a file added before (tar order); others are not files."""
        found = self._entries.get(member_name(target))
        if found is not None:
            name = member_name(name)
            self._entries[name] = FileEntry(name, mode, found.sha1, found.sha256, found.go)

    def entries(self) -> tuple[FileEntry, ...]:
        return tuple(sorted(self._entries.values(), key=lambda e: e.name))


def member_name(name: str) -> str:
    """``app``, ``/app`` or ``./app`` → ``./app`` (``.env`` stays ``./.env``)."""
    while name.startswith(("./", "/")):
        name = name[1:] if name[0] == "/" else name[2:]
    return "./" + name
