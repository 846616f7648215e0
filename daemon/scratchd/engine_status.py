"""``engines.json`` in the state directory: what placement knows, for ``status`` and ``builds``.

The daemon rewrites it (atomically: temp file + rename) whenever an engine
goes up or down or a slot is taken or freed; the CLI commands only read it.
It also remembers which engine ran each recent build, so ``scratchd builds``
can show it after the build ended. It is a view, not state: losing it loses
nothing but that column until the next builds run.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from scratchd.placement import Placer

FILE_NAME = "engines.json"
_KEEP = 1000  # builds remembered


class EngineStatusFile:
    """Writes ``engines.json`` from a :class:`Placer` (call :meth:`update` on every change)."""

    def __init__(self, state_root: Path, urls: dict[str, str]) -> None:
        self.path = state_root / FILE_NAME
        self._urls = urls
        self._builds: dict[str, str] = dict(read_status(self.path).get("builds", {}))
        self._lock = threading.Lock()
        self.placer: Placer | None = None

    def set_urls(self, urls: dict[str, str]) -> None:
        """A reload changed the engines; an engine being removed keeps its shown address."""
        with self._lock:
            self._urls = {**self._urls, **urls}
        self.update()

    def update(self) -> None:
        if self.placer is None:
            return
        with self._lock:
            for lease in self.placer.leases():
                self._builds[lease.build] = lease.engine
            while len(self._builds) > _KEEP:
                self._builds.pop(next(iter(self._builds)))
            engines = [
                {
                    "name": e.name,
                    "url": self._urls.get(e.name, ""),
                    "up": e.up,
                    "used": e.used,
                    "capacity": e.capacity,
                    "labels": sorted(e.labels),
                    **({"removed": True} if e.removed else {}),
                    **e.facts,
                }
                for e in self.placer.engines()
            ]
            _write_atomically(self.path, {"engines": engines, "builds": self._builds})


def read_status(path: Path) -> dict[str, Any]:
    """The file's content, or ``{}`` when there is none (no engines, or never written)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def engine_lines(status: dict[str, Any]) -> list[str]:
    """``scratchd status``'s engine section."""
    lines = []
    for e in status.get("engines", []):
        state = "removed" if e.get("removed") else "up" if e.get("up") else "DOWN"
        facts = ""
        if e.get("version"):
            memory = e.get("memory", 0) / 2**30
            facts = f", docker {e['version']}, {e.get('cpus', '?')} CPUs, {memory:.1f} GiB"
        labels = f", labels {', '.join(e['labels'])}" if e.get("labels") else ""
        lines.append(
            f"  {e['name']}  {state}  {e.get('used', 0)}/{e.get('capacity', 0)} slots"
            f"{facts}{labels}  {e.get('url', '')}"
        )
    return lines


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".engines-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
