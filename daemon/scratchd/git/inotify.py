"""inotify watches on git directories, through watchdog's inotify layer: the watcher's fast path.

A ref update is a lock file renamed into place (``refs/heads/main.lock`` →
``refs/heads/main``, or the same for ``packed-refs``), so the events worth
a scan are writes, renames and deletions of ``HEAD``, ``packed-refs`` and
anything under ``refs/``. Everything else in a git dir (objects, index,
logs) is noise: ``objects/`` and ``logs/`` are not even watched.

Why not watchdog's ``Observer``: it runs one emitter thread per scheduled
path (two per repository: 2,000 threads and 94 MB of RSS for 1,000
repositories). Its inotify layer, ``InotifyFD`` (one instance, one thread
blocked in ``poll()`` with no timeout), takes plain callbacks per watch
descriptor; this module registers one small callback per repository on
the git dir and on every directory under ``refs/``, and adds a watch for a
directory that appears there (``refs/heads/feature/``) when it appears.

Locking: ``InotifyFD`` calls back on its own thread without holding its
lock, and the callback (``fire``) takes the watcher's lock; this module's
own lock guards only its bookkeeping and is never held while firing.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog.observers.inotify_c import (
    CallbackId,
    InotifyConstants,
    InotifyEvent,
    InotifyFD,
    Mask,
    WatchDescriptor,
)

log = logging.getLogger(__name__)
_C = InotifyConstants
#: Only changes. Opens and reads are left out, or the watcher's own scan (which
#: opens HEAD and the refs) would trigger the next one.
MASK = Mask(
    _C.IN_CREATE
    | _C.IN_DELETE
    | _C.IN_MOVED_FROM
    | _C.IN_MOVED_TO
    | _C.IN_CLOSE_WRITE
    | _C.IN_MODIFY
    | _C.IN_DELETE_SELF
    | _C.IN_ONLYDIR
    | _C.IN_DONT_FOLLOW
)
_TOP_LEVEL = (b"HEAD", b"packed-refs")


class GitDirWatches:
    """One inotify instance and one reader thread for every watched git dir."""

    def __init__(self) -> None:
        self._fd = InotifyFD()
        self._fd.name = "scratchd-inotify"
        self._lock = threading.Lock()

    def start(self) -> None:
        self._fd.start()

    def stop(self) -> None:
        self._fd.stop()
        if self._fd.is_alive():
            self._fd.join(5)

    def watch(self, gdir: Path, fire: Callable[[], None], cancelled: Callable[[], bool]) -> list:
        """Watch ``gdir`` (HEAD, packed-refs) and every directory under ``gdir/refs``.

        Returns the handles for :meth:`unwatch`; none when ``cancelled()`` is
        true under the lock (the repository was dropped meanwhile). Raises
        OSError when the directory cannot be watched (nothing is left behind).
        """
        repo = _RepoWatch(self._fd, os.fsencode(gdir), fire)
        with self._lock:
            if cancelled():
                return []
            try:
                repo.add_tree()
            except OSError:
                repo.close()
                raise
        return [repo]

    def unwatch(self, handles: list) -> None:
        with self._lock:
            for repo in handles:
                repo.close()


class _RepoWatch:
    """One repository's watches: the callback ``InotifyFD`` calls for their events."""

    def __init__(self, fd: InotifyFD, gdir: bytes, fire: Callable[[], None]) -> None:
        self._fd = fd
        self._gdir = gdir
        self._refs = os.path.join(gdir, b"refs")
        self._fire = fire
        self._id = CallbackId(id(self))
        self._lock = threading.Lock()
        self._paths: dict[WatchDescriptor, bytes] = {}
        self._closed = False

    def add_tree(self) -> None:
        """The git dir and ``refs/`` must be watchable; directories below may vanish."""
        self._add(self._gdir)
        self._add(self._refs)
        self._add_below(self._refs)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            wds, self._paths = list(self._paths), {}
        # KeyError & co: the watch already went away with its directory.
        with contextlib.suppress(KeyError, ValueError, OSError):
            self._fd.remove_callbacks([(wd, self._id) for wd in wds])

    def _add(self, path: bytes) -> None:
        with self._lock:
            if path in self._paths.values():  # a new directory seen by event and by walk
                return
        wd = self._fd.add_callback(path, MASK, self, self._id)
        if wd < 0:  # InotifyFD reports EACCES as a watch descriptor of -1, not an error
            self._fd.remove_callbacks([(wd, self._id)])
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
        with self._lock:
            closed = self._closed
            if not closed:
                self._paths[wd] = path
        if closed:  # unwatched while this was being added
            self._fd.remove_callbacks([(wd, self._id)])

    def _add_below(self, top: bytes) -> None:
        for root, dirs, _ in os.walk(top):
            for name in dirs:
                with contextlib.suppress(OSError):  # gone again, or not ours to read
                    self._add(os.path.join(root, name))

    # -- InotifyFD's WatchCallback protocol (its reader thread) ----------------

    def on_event(self, event: InotifyEvent) -> None:
        try:
            self._on_event(event)
        except Exception:  # an exception would end the reader thread every repository shares
            log.exception("inotify event %r under %s", event, os.fsdecode(self._gdir))

    def _on_event(self, event: InotifyEvent) -> None:
        with self._lock:
            where = self._paths.get(event.wd)
        if where is None:
            return
        if where == self._gdir:
            if event.name in _TOP_LEVEL:
                self._fire()
            return
        if event.is_directory and (event.is_create or event.is_moved_to):
            # A new refs/heads/feature/: watch it, and what was made in it before that.
            new = os.path.join(where, event.name)
            with contextlib.suppress(OSError):
                self._add(new)
                self._add_below(new)
            self._fire()  # refs may have landed in it before its watch existed
        elif event.name and not event.name.endswith(b".lock"):
            self._fire()

    def on_watch_deleted(self, wd: WatchDescriptor) -> None:
        with self._lock:
            self._paths.pop(wd, None)

    def on_queue_overflow(self) -> None:
        """Events were lost: have the repository read again."""
        self._fire()
