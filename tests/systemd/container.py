"""A Docker container booted with systemd as PID 1, for the system tests.

The options are the ones systemd needs in an unprivileged-ish container
(``--privileged`` is refused on the test engine): its own /run, /run/lock
and /tmp as tmpfs, the host's cgroup tree writable so it can create the
units' cgroups, SYS_ADMIN for the mount namespaces of the hardening
directives, ``container=docker`` so it skips what a container cannot do, and
the host network so the test registry on loopback is reachable.
"""

from __future__ import annotations

import contextlib
import shlex
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BOOT_TIMEOUT = 90


@dataclass
class Result:
    code: int
    output: str

    @property
    def ok(self) -> bool:
        return self.code == 0


class SystemdContainer:
    """One booted container; ``sh`` runs a shell command inside it."""

    def __init__(self, container) -> None:
        self.container = container
        self.name = container.name

    def sh(self, command: str, *, check: bool = True, user: str = "root") -> Result:
        code, out = self.container.exec_run(["bash", "-c", command], user=user, demux=False)
        result = Result(code, (out or b"").decode("utf-8", "replace"))
        if check and not result.ok:
            raise AssertionError(f"in {self.name}: {command!r} exited {code}:\n{result.output}")
        return result

    def wait(self, command: str, timeout: float, what: str) -> Result:
        """Run ``command`` until it succeeds; every check is bounded in time."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.sh(command, check=False)
            if result.ok:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} after {timeout}s; last output:\n{result.output}")
            time.sleep(0.5)

    def write(self, path: str, text: str, mode: str = "0644") -> None:
        """Create a file inside (through the shell: the SDK's put_archive needs a tar)."""
        quoted = shlex.quote(text)
        self.sh(
            f"mkdir -p {shlex.quote(str(Path(path).parent))} && "
            f"printf %s {quoted} > {shlex.quote(path)} && chmod {mode} {shlex.quote(path)}"
        )

    def journal(self, *args: str) -> str:
        """``journalctl`` output inside, without a pager."""
        return self.sh("journalctl --no-pager " + " ".join(shlex.quote(a) for a in args)).output


@contextlib.contextmanager
def booted(client, image: str, mounts: dict[str, str]) -> Iterator[SystemdContainer]:
    """Boot ``image`` with systemd as PID 1; ``mounts`` is host path -> container path (ro).

    The container is removed afterwards whatever happened.
    """
    volumes = {"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}}
    volumes |= {host: {"bind": inside, "mode": "ro"} for host, inside in mounts.items()}
    container = client.containers.run(
        image,
        # systemd leaves mount propagation to the container manager when it
        # detects a container, and Docker makes it private. Credentials
        # (LoadCredential=) are mounted in a helper's namespace and must
        # propagate to the service, so mark / shared first, then become init.
        ["/bin/sh", "-c", "mount --make-rshared / && exec /sbin/init"],
        name=f"scratchd-test-systemd-{uuid.uuid4().hex[:10]}",
        detach=True,
        cap_add=["SYS_ADMIN"],
        tmpfs={"/run": "", "/run/lock": "", "/tmp": ""},
        volumes=volumes,
        environment={"container": "docker"},
        network_mode="host",
        stop_signal="SIGRTMIN+3",  # systemd's "halt" signal
    )
    box = SystemdContainer(container)
    try:
        box.wait(
            's=$(systemctl is-system-running); [ "$s" = running ] || [ "$s" = degraded ]',
            BOOT_TIMEOUT,
            "systemd did not finish booting",
        )
        yield box
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)
