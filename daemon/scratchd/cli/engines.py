"""Wiring for ``[[engine]]``: endpoints, placement, health, the status file, the backends.

Only the CLI turns config blocks into runner objects (the runner never reads
scratchd.toml), so this lives next to ``cli/run.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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
    """The daemon's engines: placement (slots), health (probes, orphans), status file.

    ``endpoints`` is the dict the backend factory reads: a reload adds and
    replaces entries in it but never drops one, so a running build whose
    engine was removed still finds it for its next pipeline.
    """

    placer: Placer
    health: EngineHealth
    status: EngineStatusFile
    endpoints: dict
    engines: tuple = ()  # the EngineConfigs in force
    socket_dir: Path | None = None
    replaced: list = field(default_factory=list)  # endpoints a reload replaced: closed at stop

    def start(self) -> None:
        self.health.check_once()  # probe and sweep orphans before the first build
        self.status.update()
        self.health.start()

    def stop(self) -> None:
        self.health.stop()
        for endpoint in [*self.endpoints.values(), *self.replaced]:
            endpoint.close()
            if endpoint.tunnel is not None:
                endpoint.tunnel.close()

    def reconfigure(self, config: Config) -> None:
        """SIGHUP: take the reloaded ``[[engine]]`` blocks without a restart.

        An added engine, or one whose address or credentials changed, takes
        builds after its first successful probe; a removed one takes no new
        build and its running builds finish there; capacity and labels of a
        kept engine change at once.
        """
        old = {e.name: e for e in self.engines}
        new = {e.name: e for e in config.engines}
        fresh = {name for name, e in new.items() if _reach(old.get(name)) != _reach(e)}
        socket_dir = self.socket_dir or config.daemon.state_dir / "tunnels"
        for name in sorted(fresh):
            if name in self.endpoints:
                self.replaced.append(self.endpoints[name])
            self.endpoints[name] = endpoint_of(new[name], socket_dir)
        self.engines = tuple(config.engines)
        self.status.set_urls({e.name: e.url for e in config.engines})
        self.placer.reconfigure(((e.name, e.capacity, e.labels) for e in config.engines), fresh)
        self.health.reconfigure([self.endpoints[name] for name in new], fresh)
        for name in sorted(fresh):
            what = "added" if name not in old else "changed"
            log.warning("reload: engine %s %s; it takes builds once it answers", name, what)
        for name in sorted(set(old) - set(new)):
            log.warning("reload: engine %s removed; its running builds finish there", name)


def _reach(engine: EngineConfig | None) -> tuple | None:
    """What decides where and how an engine is reached (capacity and labels do not)."""
    if engine is None:
        return None
    return (engine.url, engine.tls, engine.insecure, engine.ssh_key, engine.known_hosts)


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
    return EnginePool(placer, health, status, found, tuple(config.engines), state_root / "tunnels")


class BuildPriority(NamedTuple):
    """How far below the daemon's CPU priority builds run (``[daemon] build_*``)."""

    nice: int = 0  # host steps, and their session's autogroup
    cpu_shares: int | None = None  # docker containers (None: the engine's default)
    idle: bool = False  # host steps under SCHED_IDLE


def backend_factory(
    engine_endpoints: dict, priority: Callable[[], BuildPriority] = BuildPriority
) -> Callable:
    """``kind -> Backend``: "host", "docker" (local engine) or "engine:NAME" (a pool engine).

    ``priority()`` is read for each new backend: builds run below the daemon's
    own CPU priority, taken at each build so a reload applies.
    """

    def make(kind: str):
        p = priority()
        if kind.startswith("engine:"):
            from scratchd.runner.remote_engine import RemoteEngineBackend

            endpoint = engine_endpoints[kind.removeprefix("engine:")]
            return RemoteEngineBackend(endpoint, cpu_shares=p.cpu_shares)
        if kind == "host":
            from scratchd.runner.host import HostBackend

            return HostBackend(nice=p.nice, idle=p.idle)
        from scratchd.runner.docker_backend import DockerBackend

        return DockerBackend(cpu_shares=p.cpu_shares)

    return make
