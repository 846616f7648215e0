"""Walking a build output directory in a reproducible order.

The walk is the half of reproducibility that tar cannot give: entries come
out depth-first with siblings sorted by the bytes of their names (never by
locale or by the order the filesystem returns them), and only what a layer
can hold is accepted. Symlinks are *read*, never followed, so a link that
points outside the directory (``../../etc/passwd``) is stored as text and
nothing outside the directory is ever opened.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scratchd.errors import ImageError, UnsupportedFileError

FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"

_REFUSED = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


@dataclass(frozen=True)
class Entry:
    """One thing to put in the layer.

    ``name`` is the path inside the image without a leading slash, as a
    ``str`` whose undecodable bytes are surrogate-escaped (``os.fsdecode``),
    so a non-UTF-8 name round-trips to exactly its original bytes.
    ``link`` is a symlink's target text or, for a hard link, the ``name`` of
    the entry that carries the data.
    """

    name: str
    kind: str
    mode: int
    size: int = 0
    link: str = ""
    source: str = ""  # path on disk, for FILE entries


def check_root(root: Path) -> Path:
    """DIR must exist and be a directory (a symlink to one is fine: it is DIR itself)."""
    try:
        info = os.stat(root)
    except FileNotFoundError:
        raise ImageError(f"{root}: no such directory") from None
    except OSError as exc:
        raise ImageError(f"{root}: cannot read: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{root}: not a directory")
    return root


def walk(root: Path) -> Iterator[Entry]:
    """Every entry below ``root`` (``root`` itself excluded), in layer order.

    A generator, so a tree of any size costs memory only for one directory
    listing per level and the table of multiply-linked inodes.
    """
    seen_inodes: dict[tuple[int, int], str] = {}
    yield from _walk_dir(os.fsdecode(root), "", seen_inodes)


def _walk_dir(path: str, prefix: str, seen: dict[tuple[int, int], str]) -> Iterator[Entry]:
    for name in _sorted_names(path):
        full = os.path.join(path, name)
        rel = prefix + name
        try:
            info = os.lstat(full)
        except OSError as exc:
            raise UnsupportedFileError(f"{full}: cannot stat: {exc.strerror}") from None
        entry = _entry(full, rel, info, seen)
        yield entry
        if entry.kind == DIRECTORY:
            yield from _walk_dir(full, rel + "/", seen)


def _sorted_names(path: str) -> list[str]:
    try:
        names = os.listdir(path)
    except OSError as exc:
        raise UnsupportedFileError(f"{path}: cannot read directory: {exc.strerror}") from None
    return sorted(names, key=os.fsencode)


def _entry(full: str, rel: str, info: os.stat_result, seen: dict[tuple[int, int], str]) -> Entry:
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        return Entry(rel, DIRECTORY, mode)
    if stat.S_ISLNK(info.st_mode):
        # Linux ignores a symlink's own mode; 0777 is what every tool writes.
        return Entry(rel, SYMLINK, 0o777, link=os.readlink(full))
    if stat.S_ISREG(info.st_mode):
        if info.st_nlink > 1:
            first = seen.setdefault((info.st_dev, info.st_ino), rel)
            if first != rel:
                return Entry(rel, HARDLINK, mode, link=first)
        return Entry(rel, FILE, mode, size=info.st_size, source=full)
    for test, what in _REFUSED:
        if test(info.st_mode):
            raise UnsupportedFileError(
                f"{full}: is {what}; an image layer holds only files, directories and links"
            )
    raise UnsupportedFileError(f"{full}: unsupported file type {stat.S_IFMT(info.st_mode):o}")
