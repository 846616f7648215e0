"""Docker engines on other hosts: how to reach one, what it is, what we left on it.

The runner does not read scratchd.toml: the daemon's wiring turns each
``[[engine]]`` block into an :class:`EngineEndpoint`. Builds share one
client per engine (:meth:`EngineEndpoint.shared_client`), so its pool of
TLS connections stays open from one pipeline to the next instead of each
pipeline paying a handshake and a version query; probes and sweeps make
their own short-lived client with a short timeout. Every client has a
timeout, so a dead host costs a bounded wait, never a hung worker.

Every attach and every step's exec takes a connection out of that pool for
good (the engine hijacks it), and the next call would pay a new TLS
handshake on the build's path: 10 ms on an idle controller, 50 to 80 ms on
a busy one, three times per pipeline. So the pool keeps :data:`SPARES` open
connections, opened by :class:`Spares` in the background when the engine
first answers and after each hijack (:meth:`EngineEndpoint.keep_warm`).

A waiting build's head start (making its container while the slot is
busy, see :mod:`scratchd.runner.remote_engine`) and the removal of a
finished pipeline yield to pipelines that hold a slot and are being set
up on that engine (:meth:`EngineEndpoint.setting_up`): on a busy host,
they would otherwise share its CPU and the running build would start later.

A finished pipeline's container and network are removed by the engine's
:class:`Remover` thread (:meth:`EngineEndpoint.remove_later`), after the
build gave its slot back: removing them takes a quarter of a second of a
busy engine, which the next build on that slot need not wait for. Nothing
runs in them any more; :meth:`EngineEndpoint.close` waits for the removals,
and what a crash leaves is the orphan sweep's (:func:`remove_orphans`).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import docker.tls
import requests
from urllib3.util.connection import is_connection_dropped

from scratchd.errors import BackendError
from scratchd.runner.docker_backend import BUILD_LABEL, MANAGED_LABEL
from scratchd.runner.ssh_tunnel import SshTunnel

log = logging.getLogger(__name__)

#: Which engine of the pool a container belongs to (also shown by ``docker ps``).
ENGINE_LABEL = "org.scratchd.engine"
_MIN_API = "1.24"
_BUILD_TIMEOUT = 120.0  # the builds' shared client: a pull or a big upload takes long
#: How long work off the slots' path yields to pipelines being set up on its engine.
_YIELD_AT_MOST = 10.0
#: Open connections each engine's shared client keeps waiting for the next call.
SPARES = 2
_ENGINE_ERRORS = (docker.errors.DockerException, requests.RequestException, OSError)


@dataclass(frozen=True)
class EngineEndpoint:
    """Where one engine listens and the client TLS files to talk to it."""

    name: str
    url: str
    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    #: ``ssh://`` engines: the one tunnel all of this engine's clients go through.
    tunnel: SshTunnel | None = field(default=None, compare=False, repr=False)
    _shared: dict = field(default_factory=dict, compare=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)
    _remover: Remover = field(default_factory=lambda: Remover(), compare=False, repr=False)
    _spares: Spares = field(default_factory=lambda: Spares(), compare=False, repr=False)
    _setups: Setups = field(default_factory=lambda: Setups(), compare=False, repr=False)

    def client(self, timeout: float = 60) -> docker.DockerClient:
        """A client for this engine; TLS verifies the engine's certificate against ``ca``."""
        if self.url.startswith("ssh://"):
            if self.tunnel is None:
                raise BackendError(f"engine {self.name}: ssh:// needs a tunnel")
            return _client(self.name, self.tunnel.ensure(), None, timeout)
        tls = None
        if self.ca is not None and self.cert is not None and self.key is not None:
            tls = docker.tls.TLSConfig(
                client_cert=(str(self.cert), str(self.key)), ca_cert=str(self.ca), verify=True
            )
        url = self.url.replace("tcp://", "https://", 1) if tls else self.url
        return _client(self.name, url, tls, timeout)

    def shared_client(self, timeout: float = _BUILD_TIMEOUT) -> docker.DockerClient:
        """The client builds on this engine share (thread-safe); :meth:`close` ends it."""
        if self.tunnel is not None:
            self.tunnel.ensure()  # restarted if it died; the socket path stays the same
        with self._lock:
            client = self._shared.get(timeout)
            made = client is None
            if client is None:
                client = self._shared[timeout] = self.client(timeout)
        if made:
            self.keep_warm()
        return client

    def keep_warm(self) -> None:
        """Open :data:`SPARES` idle connections in the shared client's pool, in the background.

        For TLS (and plain TCP) engines; a unix socket or an ssh tunnel's
        socket connects for free.
        """
        if self.url.startswith("tcp://"):
            self._spares.top_up(self)

    def idle_connections(self) -> int:
        """Open connections waiting in the builds' shared client's pool."""
        with self._lock:
            client = self._shared.get(_BUILD_TIMEOUT)
        return 0 if client is None else len(_idle(_pool(client)))

    def setting_up(self) -> contextlib.AbstractContextManager[None]:
        """Held while a pipeline that has its slot is being set up here."""
        return self._setups.held()

    def wait_for_setups(self, timeout: float = _YIELD_AT_MOST) -> bool:
        """Wait until no pipeline is being set up here (at most ``timeout``); True if none is."""
        return self._setups.wait_clear(timeout)

    def remove_later(self, containers: list[str], network: str | None, fields: dict) -> None:
        """Remove a finished pipeline's containers, then its network, on the remover thread."""
        self._remover.put(self, containers, network, fields)

    def settle(self, timeout: float = 60) -> bool:
        """Wait for the removals handed to :meth:`remove_later`; True when none is left."""
        return self._remover.wait(timeout)

    def close(self, timeout: float = 60) -> None:
        """Finish pending removals, close the shared clients (the daemon stops or dropped us)."""
        if not self.settle(timeout):
            log.warning("engine %s: removals still pending at close", self.name)
        with self._lock:
            clients = list(self._shared.values())
            self._shared.clear()
        for client in clients:
            client.close()


class Spares:
    """Tops up one engine's pool to :data:`SPARES` open connections on its own thread.

    One thread at a time; a request while it runs makes it look once more.
    A failure only means the next call connects by itself: logged at debug.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._again = False

    def top_up(self, endpoint: EngineEndpoint) -> None:
        with self._lock:
            if self._running:
                self._again = True
                return
            self._running = True
        name = f"scratchd-warm-{endpoint.name}"
        threading.Thread(target=self._run, args=(endpoint,), name=name, daemon=True).start()

    def _run(self, endpoint: EngineEndpoint) -> None:
        while True:
            try:
                _open_spares(endpoint.shared_client())
            except Exception as exc:  # the engine is down: builds will say so
                log.debug("engine %s: no spare connection: %s", endpoint.name, exc)
            with self._lock:
                if not self._again:
                    self._running = False
                    return
                self._again = False


def _pool(client: docker.DockerClient):
    """The urllib3 pool the client's requests to the engine go through."""
    api = client.api
    request = requests.Request("GET", api._url("/_ping")).prepare()
    adapter = api.get_adapter(request.url)
    return adapter.get_connection_with_tls_context(request, api.verify, cert=api.cert)


def _idle(pool) -> list:
    """The pool's connections the next requests will use as they are.

    The rest of its slots are None (made on demand); urllib3 drops and
    replaces a connection that has anything to read before its request.
    """
    return [c for c in list(pool.pool.queue) if c is not None and not is_connection_dropped(c)]


def _open_spares(client: docker.DockerClient) -> None:
    """Connect until :data:`SPARES` connections wait in the pool, ready to use.

    Each spare asks ``/_ping`` once: a TLS 1.3 engine sends its session
    tickets after the handshake, and a connection with them unread looks
    dropped to urllib3, which would connect anew on the build's path.
    urllib3's pool is a LIFO queue of ``maxsize`` slots, each a connection
    or None; a spare takes the place of a None, on top, so the next request
    gets it.
    """
    pool = _pool(client)
    for _ in range(SPARES - len(_idle(pool))):
        conn = pool._new_conn()
        conn.connect()
        conn.request("GET", "/_ping")
        conn.getresponse().read()
        with pool.pool.mutex:
            slots = pool.pool.queue
            if None in slots:
                slots.remove(None)
                slots.append(conn)
                continue
        conn.close()  # every slot holds a connection already
        return


class Setups:
    """How many pipelines are being set up on one engine; waiters wake when none is."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._count = 0

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._changed:
            self._count += 1
        try:
            yield
        finally:
            with self._changed:
                self._count -= 1
                self._changed.notify_all()

    def wait_clear(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, timeout)


class Remover:
    """One engine's removal thread: started with the first removal, ends when idle.

    A removal that fails is logged and dropped: the build is over, so the
    orphan sweep removes what is left.
    """

    _IDLE = 5.0  # seconds without work before the thread ends

    def __init__(self) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def put(self, endpoint: EngineEndpoint, containers: list[str], net: str | None, fields: dict):
        self._queue.put((endpoint, list(containers), net, dict(fields)))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name=f"scratchd-remove-{endpoint.name}", daemon=True
                )
                self._thread.start()

    def wait(self, timeout: float) -> bool:
        """True when every removal handed in so far is done (or given up)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _run(self) -> None:
        while True:
            try:
                work = self._queue.get(timeout=self._IDLE)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():  # put() starts a new thread after this
                        self._thread = None
                        return
                continue
            try:
                work[0].wait_for_setups()  # a starting pipeline goes first
                _remove(*work)
            except Exception:  # never let one removal end the thread
                log.exception("engine removal failed", extra=work[3])
            finally:
                self._queue.task_done()


def _remove(endpoint: EngineEndpoint, containers: list[str], net: str | None, fields: dict):
    try:
        api = endpoint.shared_client().api
        for cid in containers:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_container(cid, force=True, v=True)
        if net is not None:
            with contextlib.suppress(docker.errors.NotFound):
                api.remove_network(net)
    except (*_ENGINE_ERRORS, BackendError) as exc:
        log.warning(
            "engine %s: removing a finished pipeline failed (the orphan sweep retries): %s",
            endpoint.name,
            exc,
            extra=fields,
        )


def _client(
    name: str, url: str, tls: docker.tls.TLSConfig | None, timeout: float
) -> docker.DockerClient:
    try:
        # A fixed version first: "auto" would ask the engine before trust_env is off.
        client = docker.DockerClient(base_url=url, tls=tls, timeout=timeout, version=_MIN_API)
        # requests lets $REQUESTS_CA_BUNDLE override the session's CA file, which would
        # verify the engine against the public CAs instead of this engine's own.
        client.api.trust_env = False
        client.api._version = client.api._retrieve_server_version()
    except _ENGINE_ERRORS as exc:
        raise BackendError(f"engine {name}: cannot make a client: {exc}") from None
    return client


@dataclass(frozen=True)
class EngineFacts:
    """What ``scratchd status`` shows of an engine that answered."""

    version: str
    cpus: int
    memory: int  # bytes


def probe(endpoint: EngineEndpoint, timeout: float = 5) -> EngineFacts:
    """Ping the engine and read its version, CPUs and memory; BackendError when it is down."""
    try:
        client = endpoint.client(timeout)
        try:
            client.ping()
            info = client.info()
        finally:
            client.close()
    except _ENGINE_ERRORS as exc:
        raise BackendError(f"engine {endpoint.name} at {endpoint.url}: {exc}") from None
    return EngineFacts(
        version=str(info.get("ServerVersion", "?")),
        cpus=int(info.get("NCPU", 0)),
        memory=int(info.get("MemTotal", 0)),
    )


def remove_orphans(endpoint: EngineEndpoint, running: Collection[str], timeout: float = 30) -> int:
    """Remove scratchd's containers and networks whose build is not in ``running``.

    ``running`` holds build numbers (as strings). A controller killed with
    ``kill -9`` leaves its pipeline containers behind; this is how the next
    start (and the periodic sweep) gets rid of them. Returns how many
    containers went.
    """
    removed = 0
    try:
        client = endpoint.client(timeout)
    except BackendError:
        return 0
    try:
        api = client.api
        for c in api.containers(all=True, filters={"label": MANAGED_LABEL}):
            if c.get("Labels", {}).get(BUILD_LABEL, "") in running:
                continue
            api.remove_container(c["Id"], force=True, v=True)
            removed += 1
        for net in api.networks(filters={"label": MANAGED_LABEL}):
            if net.get("Labels", {}).get(BUILD_LABEL, "") not in running:
                _quietly(api.remove_network, net["Id"])
    except _ENGINE_ERRORS as exc:
        log.warning("engine %s: orphan cleanup failed: %s", endpoint.name, exc)
    finally:
        client.close()
    if removed:
        log.warning(
            "engine %s: removed %d orphaned container(s)",
            endpoint.name,
            removed,
            extra={"ENGINE": endpoint.name},
        )
    return removed


def _quietly(call: Callable[[str], object], arg: str) -> None:
    """A network still in use by a live container stays; the next sweep gets it."""
    try:
        call(arg)
    except _ENGINE_ERRORS as exc:
        log.debug("ignored: %s", exc)
