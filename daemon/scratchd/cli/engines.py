"""Wiring for ``[[engine]]``: endpoints, placement, health, the status file, the backends.

Only the CLI turns config blocks into runner objects (the runner never reads
scratchd.toml), so this lives next to ``cli/run.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scratchd.config import Config

if TYPE_CHECKING:
    from scratchd.config.engines import EngineConfig
    from scratchd.engine_status import EngineStatusFile
    from scratchd.placement import Placer
    from scratchd.runner.engine_health import EngineHealth
    from scratchd.runner.engines import EngineEndpoint

log = logging.getLogger(__name__)


def endpoint_of(engine: EngineConfig, socket_dir: Path) -> EngineEndpoint:
    """The runner's view of one ``[[engine]]``; ``ssh://`` gets its tunnel (in ``socket_dir``)."""
    from scratchd.runner.engines import EngineEndpoint

    if engine.scheme == "ssh":
        from scratchd.runner.ssh_tunnel import SshTunnel

        tunnel = SshTunnel(
            engine.url, socket_dir, identity=engine.ssh_key, known_hosts=engine.known_hosts
        )
        return EngineEndpoint(engine.name, engine.url, tunnel=tunnel)
    tls = engine.tls
    if tls is None:
        return EngineEndpoint(engine.name, engine.url)
    return EngineEndpoint(engine.name, engine.url, tls.ca, tls.cert, tls.key)


def endpoints(config: Config, socket_dir: Path) -> dict[str, EngineEndpoint]:
    """``{name: EngineEndpoint}`` of the config's engines, with a warning for plain TCP."""
    found = {}
    for e in config.engines:
        found[e.name] = endpoint_of(e, socket_dir)
        if e.plaintext and e.insecure:
            log.warning(
                "engine %s: plain tcp:// without TLS (insecure = true): anyone who can reach "
                "%s is root on that host",
                e.name,
                e.url,
                extra={"ENGINE": e.name},
            )
    return found


@dataclass
class EnginePool:
    """The daemon's engines: placement (slots), health (probes, orphans), status file."""

    placer: Placer
    health: EngineHealth
    status: EngineStatusFile
    endpoints: dict

    def start(self) -> None:
        self.health.check_once()  # probe and sweep orphans before the first build
        self.status.update()
        self.health.start()

    def stop(self) -> None:
        self.health.stop()
        for endpoint in self.endpoints.values():
            endpoint.close()
            if endpoint.tunnel is not None:
                endpoint.tunnel.close()


def engine_pool(
    config: Config, state_root: Path, running: Callable[[], Collection[str]]
) -> EnginePool | None:
    """None without ``[[engine]]`` blocks: builds use the local engine as before."""
    if not config.engines:
        return None
    from scratchd.engine_status import EngineStatusFile
    from scratchd.placement import Placer
    from scratchd.runner.engine_health import EngineHealth

    found = endpoints(config, state_root / "tunnels")
    status = EngineStatusFile(state_root, {e.name: e.url for e in config.engines})
    health_box: list = []
    placer = Placer(
        ((e.name, e.capacity, e.labels) for e in config.engines),
        on_lost=lambda name: health_box[0].suspect(name),
        on_change=status.update,
    )
    status.placer = placer

    def on_result(name: str, up: bool, facts) -> None:
        shown = facts.__dict__ if facts is not None else None
        placer.mark(name, up, shown)

    interval = config.daemon.engine_check_interval
    health = EngineHealth(list(found.values()), on_result, running, interval=interval)
    health_box.append(health)
    return EnginePool(placer, health, status, found)


def backend_factory(
    engine_endpoints: dict, priority: Callable[[], tuple[int, int | None]] = lambda: (0, None)
) -> Callable:
    """``kind -> Backend``: "host", "docker" (local engine) or "engine:NAME" (a pool engine).

    ``priority()`` gives (nice, CPU shares) for each new backend: builds run below
    the daemon's own CPU priority, read at each build so a reload applies.
    """

    def make(kind: str):
        nice, cpu_shares = priority()
        if kind.startswith("engine:"):
            from scratchd.runner.remote_engine import RemoteEngineBackend

            endpoint = engine_endpoints[kind.removeprefix("engine:")]
            return RemoteEngineBackend(endpoint, cpu_shares=cpu_shares)
        if kind == "host":
            from scratchd.runner.host import HostBackend

            return HostBackend(nice=nice)
        from scratchd.runner.docker_backend import DockerBackend

        return DockerBackend(cpu_shares=cpu_shares)

    return make
