"""sd_notify(3) without libsystemd: state changes sent to the service manager.

A ``Type=notify`` service tells systemd it is ready, what it is doing, that
its main loop is alive, and that it is reloading or stopping, by sending
``KEY=value`` lines as one datagram to ``$NOTIFY_SOCKET``. The protocol is a
few lines of code, so it is written here rather than pulled in as a C
binding. Outside systemd (no ``$NOTIFY_SOCKET``) every call is a no-op, so the
daemon calls the notifier unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import MutableMapping

log = logging.getLogger(__name__)

_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds, the clock systemd compares RELOADING=1 with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class Notifier:
    """Sends sd_notify messages; see the module docstring.

    ``address`` is the value of ``$NOTIFY_SOCKET``: a filesystem path or, with
    a leading ``@``, a name in the abstract namespace. ``watchdog_usec`` is
    systemd's ``$WATCHDOG_USEC`` (``WatchdogSec=``); the daemon's main loop
    pings at :attr:`watchdog_interval`, half of it, as sd_watchdog_enabled(3)
    recommends.
    """

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._sock: socket.socket | None = None

    @classmethod
    def from_environ(
        cls, environ: MutableMapping[str, str] | None = None, *, unset: bool = False
    ) -> Notifier:
        """A notifier for this process, from systemd's environment variables.

        ``unset=True`` removes the variables afterwards (like sd_notify's
        ``unset_environment``), so build steps the daemon starts do not
        inherit a socket that would let them speak for the service.
        ``WATCHDOG_PID`` naming another process means the watchdog is not ours.
        """
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET")
        usec = _int(env.get("WATCHDOG_USEC"))
        pid = _int(env.get("WATCHDOG_PID"))
        if pid is not None and pid != os.getpid():
            usec = None
        if unset:
            for name in _ENV:
                env.pop(name, None)
        return cls(address, usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``watchdog()`` calls, or None when no watchdog is set."""
        return None if self.watchdog_usec is None else self.watchdog_usec / 2_000_000

    def ready(self, status: str | None = None) -> bool:
        """Start-up finished (repos watched, queue recovered), or a reload is done."""
        return self.notify("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        """Free-form state shown by ``systemctl status``: "watching 3 repos, 1 running"."""
        return self.notify(*_status(text))

    def watchdog(self) -> bool:
        """The main loop is alive; systemd restarts the service when these stop."""
        return self.notify("WATCHDOG=1")

    def reloading(self) -> bool:
        """A SIGHUP reload started; ``ready()`` must follow when it ends."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}")

    def stopping(self, status: str | None = None) -> bool:
        """Shutdown started (SIGTERM): no new builds, running ones draining."""
        return self.notify("STOPPING=1", *_status(status))

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines; True if sent, False when disabled or failed.

        A failure is logged, never raised: losing a status update must not
        take the daemon down (systemd's watchdog catches a real hang).
        """
        address = self.address
        if address is None or not assignments:  # `enabled`, spelled so the checker narrows it
            return False
        try:
            self._socket().sendto("\n".join(assignments).encode(), _sockaddr(address))
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self.address, exc)
            return False
        return True

    def _socket(self) -> socket.socket:
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        return self._sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _sockaddr(address: str) -> str | bytes:
    """``@name`` is Linux's abstract namespace: a leading NUL byte on the wire."""
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address


def _status(text: str | None) -> tuple[str, ...]:
    # STATUS is one line; a newline would start a bogus new assignment.
    return () if text is None else ("STATUS=" + " ".join(text.splitlines()),)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None
