"""A real systemd-journald for the tests, started standalone when none runs.

On a host booted with systemd the system journald is used as is. In a
container or a CI machine without systemd as PID 1 the binary is started by
hand: it creates ``/run/systemd/journal/socket`` itself and writes to
``/run/log/journal`` (or ``/var/log/journal``), which plain ``journalctl``
reads. Tests find their own entries by a unique field value, so a shared
journal with other entries is fine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.services import unavailable, wait_for

JOURNALD = "/lib/systemd/systemd-journald"
SOCKET = "/run/systemd/journal/socket"


@dataclass
class Journald:
    """A journald that answers on :attr:`socket`; ``query`` reads it back."""

    socket: str = SOCKET

    def query(self, *matches: str, extra_args: tuple[str, ...] = ()) -> list[dict]:
        """Entries matching ``FIELD=value`` matches, as ``journalctl -o json`` gives them.

        ``--all`` keeps long and binary values (journalctl prints null otherwise).
        """
        out = subprocess.run(
            ["journalctl", "--no-pager", "--all", "-o", "json", *extra_args, *matches],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def wait(
        self,
        *matches: str,
        until: Callable[[list[dict]], bool] = bool,
        timeout: float = 15,
    ) -> list[dict]:
        """Poll ``query`` until ``until(entries)``: journald writes asynchronously."""
        deadline = time.monotonic() + timeout
        while True:
            entries = self.query(*matches)
            if until(entries) or time.monotonic() > deadline:
                return entries
            time.sleep(0.2)


def _answers(path: str) -> bool:
    """Whether a datagram to the native socket is accepted (not merely a stale file)."""
    if not os.path.exists(path):
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(path)
        except OSError:
            return False
    return True


@contextlib.contextmanager
def running_journald() -> Iterator[Journald]:
    """Use the journald that runs, or start ``systemd-journald`` for the duration."""
    if shutil.which("journalctl") is None or not os.path.exists(JOURNALD):
        unavailable("systemd-journald is not installed (apt-get install systemd)")
    if _answers(SOCKET):
        yield Journald()
        return
    Path(SOCKET).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(SOCKET)  # stale socket of a journald that died
    proc = subprocess.Popen(
        [JOURNALD], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        try:
            wait_for(lambda: _answers(SOCKET), 20, "systemd-journald")
        except TimeoutError as exc:
            unavailable(str(exc))
        yield Journald()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
