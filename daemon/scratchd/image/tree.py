"""Walking a build output directory in a reproducible order, and only inside it.

The walk is the half of reproducibility that tar cannot give: entries come
out depth-first with siblings sorted by the bytes of their names (never by
locale or by the order the filesystem returns them), and only what a layer
can hold is accepted. Symlinks are *read*, never followed, so a link that
points outside the directory (``../../etc/passwd``) is stored as text.

A step (or a container) may still be running, or may have left a process
behind, while the bake walks the tree: it can swap a directory for a
symlink to anywhere between our look and our open. So no path is ever
resolved from the root: each directory is opened relative to its parent's
file descriptor with ``O_NOFOLLOW | O_DIRECTORY``, stats and links are read
relative to it, and files are opened relative to it (``FILE`` entries carry
their directory's fd, valid until the walk goes on). A component swapped for
a link fails the open, and the bake fails cleanly instead of reading
outside.

The walk is iterative (a deep tree is no ``RecursionError``) and refuses
trees deeper than :data:`MAX_DEPTH` levels; :class:`Limits` adds the
optional caps of one bake (largest file, total bytes, time).
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from scratchd.errors import ImageError, UnsupportedFileError

FILE, DIRECTORY, SYMLINK, HARDLINK = "file", "dir", "symlink", "hardlink"

#: Deepest path (in components) a layer may hold. Real trees stay far below
#: (deep node_modules reach ~50); each level holds one open directory fd.
MAX_DEPTH = 256
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC

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
    source: str = ""  # path on disk, for FILE entries (and messages)
    dir_fd: int | None = None  # FILE entries: open ``base`` relative to this, during the walk
    base: str = ""


@dataclass(frozen=True)
class Limits:
    """Caps of one bake; ``None`` means no cap. The depth is always capped."""

    max_file_size: int | None = None
    max_total_size: int | None = None
    timeout: float | None = None  # seconds for the whole bake
    max_depth: int = MAX_DEPTH

    def deadline(self) -> float | None:
        return None if self.timeout is None else time.monotonic() + self.timeout


def check_deadline(deadline: float | None, limits: Limits) -> None:
    """Raise when the bake's time limit has passed."""
    if deadline is not None and time.monotonic() > deadline:
        raise ImageError(f"bake took longer than its {limits.timeout:g}s limit (bake_timeout)")


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


def walk(
    root: Path, limits: Limits | None = None, deadline: float | None = None
) -> Iterator[Entry]:
    """Every entry below ``root`` (``root`` itself excluded), in layer order.

    A generator, so a tree of any size costs memory only for one directory
    listing per level and the table of multiply-linked inodes. A ``FILE``
    entry's ``dir_fd`` stays open only until the generator is resumed.
    """
    limits = limits or Limits()
    seen_inodes: dict[tuple[int, int], str] = {}
    top = os.fsdecode(root)
    stack = [_enter(top, None, top, "")]
    total = 0
    try:
        while stack:
            here = stack[-1]
            name = next(here.names, None)
            if name is None:
                os.close(stack.pop().fd)
                continue
            check_deadline(deadline, limits)
            full = os.path.join(here.path, name)
            if len(stack) > limits.max_depth:
                raise ImageError(
                    f"{full}: the tree is deeper than {limits.max_depth} levels; "
                    "an image layer refuses it"
                )
            entry = _entry(here.fd, name, full, here.prefix + name, seen_inodes)
            if entry.kind == FILE:
                total += entry.size
                _check_sizes(entry, total, limits)
            yield entry
            if entry.kind == DIRECTORY:
                stack.append(_enter(name, here.fd, full, entry.name + "/"))
    finally:
        for left in stack:
            os.close(left.fd)


def _enter(name: str, dir_fd: int | None, full: str, prefix: str) -> _Dir:
    """Open and list a directory; its fd is closed again if the listing fails."""
    fd = _open(name, dir_fd, full)
    try:
        return _Dir(fd, prefix, full)
    except BaseException:
        os.close(fd)
        raise


class _Dir:
    """An open directory being listed: its fd, sorted names left, and where it is."""

    def __init__(self, fd: int, prefix: str, path: str) -> None:
        self.fd, self.prefix, self.path = fd, prefix, path
        self.names = iter(_sorted_names(fd, path))


def _open(name: str, dir_fd: int | None, full: str) -> int:
    """Open a directory without following a link (the root itself may be one)."""
    flags = _DIR_FLAGS if dir_fd is not None else _DIR_FLAGS & ~os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except (NotADirectoryError, FileNotFoundError) as exc:
        raise ImageError(f"{full}: replaced while baking ({exc.strerror})") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError(f"{full}: replaced by a symlink while baking") from None
        raise UnsupportedFileError(f"{full}: cannot read directory: {exc.strerror}") from None


def _sorted_names(fd: int, path: str) -> list[str]:
    try:
        with os.scandir(fd) as entries:
            names = [e.name for e in entries]
    except OSError as exc:
        raise UnsupportedFileError(f"{path}: cannot read directory: {exc.strerror}") from None
    return sorted(names, key=os.fsencode)


def _check_sizes(entry: Entry, total: int, limits: Limits) -> None:
    if limits.max_file_size is not None and entry.size > limits.max_file_size:
        raise ImageError(
            f"{entry.source}: {entry.size} bytes, larger than the {limits.max_file_size}-byte "
            "limit for one file (bake_max_file_size)"
        )
    if limits.max_total_size is not None and total > limits.max_total_size:
        raise ImageError(
            f"{entry.source}: the files reach {total} bytes, more than the "
            f"{limits.max_total_size}-byte limit for one image (bake_max_total_size)"
        )


def _entry(dir_fd: int, name: str, full: str, rel: str, seen: dict[tuple[int, int], str]) -> Entry:
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        raise UnsupportedFileError(f"{full}: cannot stat: {exc.strerror}") from None
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        return Entry(rel, DIRECTORY, mode)
    if stat.S_ISLNK(info.st_mode):
        # Linux ignores a symlink's own mode; 0777 is what every tool writes.
        return Entry(rel, SYMLINK, 0o777, link=_readlink(dir_fd, name, full))
    if stat.S_ISREG(info.st_mode):
        if info.st_nlink > 1:
            first = seen.setdefault((info.st_dev, info.st_ino), rel)
            if first != rel:
                return Entry(rel, HARDLINK, mode, link=first)
        return Entry(rel, FILE, mode, info.st_size, source=full, dir_fd=dir_fd, base=name)
    for test, what in _REFUSED:
        if test(info.st_mode):
            raise UnsupportedFileError(
                f"{full}: is {what}; an image layer holds only files, directories and links"
            )
    raise UnsupportedFileError(f"{full}: unsupported file type {stat.S_IFMT(info.st_mode):o}")


def _readlink(dir_fd: int, name: str, full: str) -> str:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError as exc:  # EINVAL: no longer a link
        raise ImageError(f"{full}: replaced while baking ({exc.strerror})") from None
