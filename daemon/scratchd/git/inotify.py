"""inotify watches on git directories, through watchdog: the watcher's fast path.

A ref update is a lock file renamed into place (``refs/heads/main.lock`` →
``refs/heads/main``, or the same for ``packed-refs``), so the events worth
a scan are writes, renames and deletions of ``HEAD``, ``packed-refs`` and
anything under ``refs/``. Everything else in a git dir (objects, index,
logs) is noise and is filtered out before it reaches the watcher.

Locking: watchdog dispatches events while holding its own lock, and the
callback takes the watcher's lock; so (un)scheduling here happens under a
lock of our own, never under the watcher's, or the two would deadlock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from pathlib import Path

from watchdog import events
from watchdog.observers import Observer

#: Only changes. Without this filter inotify also reports opens and reads, and
#: the watcher's own scan (which opens HEAD and the refs) would trigger the next.
WRITE_EVENTS = [
    events.FileCreatedEvent,
    events.FileDeletedEvent,
    events.FileModifiedEvent,
    events.FileMovedEvent,
    events.FileClosedEvent,
    events.DirCreatedEvent,
    events.DirDeletedEvent,
    events.DirMovedEvent,
]
_CHANGES = frozenset({"created", "deleted", "modified", "moved", "closed"})


class GitDirWatches:
    """One watchdog observer (one inotify instance) for every watched git dir."""

    def __init__(self) -> None:
        self._observer = Observer()
        self._lock = threading.Lock()

    def start(self) -> None:
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(5)

    def watch(self, gdir: Path, fire: Callable[[], None], cancelled: Callable[[], bool]) -> list:
        """Watch ``gdir`` (non-recursive: HEAD, packed-refs) and ``gdir/refs`` (recursive).

        Returns the handles for :meth:`unwatch`; none when ``cancelled()`` is
        true under the lock (the repository was dropped meanwhile). Raises
        OSError when the directory cannot be watched (nothing is left behind).
        """
        handler = _RefEventHandler(gdir, fire)
        handles: list = []
        with self._lock:
            if cancelled():
                return []
            try:
                for path, recursive in ((gdir, False), (gdir / "refs", True)):
                    handles.append(
                        self._observer.schedule(
                            handler, str(path), recursive=recursive, event_filter=WRITE_EVENTS
                        )
                    )
            except OSError:
                self._unwatch_locked(handles)
                raise
        return handles

    def unwatch(self, handles: list) -> None:
        with self._lock:
            self._unwatch_locked(handles)

    def _unwatch_locked(self, handles: list) -> None:
        for handle in handles:
            # KeyError & co: the watch already went away with its directory.
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._observer.unschedule(handle)


class _RefEventHandler(events.FileSystemEventHandler):
    """watchdog handler that fires for HEAD, packed-refs and anything under refs/.

    It overrides ``dispatch`` whole (no per-kind callbacks): the base class is
    only what ``Observer.schedule`` is typed to take.
    """

    def __init__(self, gdir: Path, fire: Callable[[], None]) -> None:
        self._gdir = str(gdir).rstrip("/") + "/"
        self._fire = fire

    def dispatch(self, event: events.FileSystemEvent) -> None:
        if event.event_type not in _CHANGES:
            return
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path and self._relevant(path if isinstance(path, str) else path.decode()):
                self._fire()
                return

    def _relevant(self, path: str) -> bool:
        if not path.startswith(self._gdir) or path.endswith(".lock"):
            return False
        rel = path[len(self._gdir) :]
        return rel in ("HEAD", "packed-refs") or rel.startswith("refs/")
