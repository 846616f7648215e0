"""``scratchd run [--config PATH]``: the daemon, in the foreground (systemd's ExecStart).

This is where the daemon's concrete classes are chosen and wired: the
store, scheduler, watcher, checkout, executor with its backends and
registry credentials, the worker pool and the sd_notify notifier. The
:class:`~scratchd.service.Service` itself only sees what it is given.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from scratchd.cli.engines import BuildPriority, EnginePool, engine_pool
from scratchd.cli.engines import backend_factory as engine_backends
from scratchd.cli.state import add_config_argument

if TYPE_CHECKING:
    from scratchd.config import Config
    from scratchd.git.watcher import Watcher, WatchSink
    from scratchd.ports import ConfigGetter
    from scratchd.redact import Masker
    from scratchd.service import Service
    from scratchd.store import StateDir, Store
    from scratchd.workers import WorkerPool

log = logging.getLogger(__name__)

#: The interpreter's GIL switch interval while the daemon runs (Python's default is 5 ms).
#: Noticing a commit takes a few dozen short calls that release the GIL (inotify, pygit2,
#: SQLite); each time, a thread busy in Python (a build's log, a reload parsing 1,000
#: repositories) keeps the GIL for up to the interval. At 5 ms that made one commit wait
#: 100-200 ms behind a SIGHUP; at 0.5 ms the control threads get it back ten times sooner.
SWITCH_INTERVAL = 0.0005


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run the daemon: watch the configured repositories and build new commits",
        description="Watch the configured repositories and build every new commit on a "
        "watched branch. SIGHUP reloads the config; SIGTERM drains running builds.",
    )
    add_config_argument(parser)
    parser.add_argument(
        "--poll-only",
        action="store_true",
        help="no inotify: find new commits by polling every poll_interval (NFS)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scratchd.cli.state import load

    config = load(args)
    if not args.verbose:  # a daemon reports its builds: INFO unless asked otherwise
        _log_at_info()
    daemon = Daemon(config, poll_only=args.poll_only, masker=getattr(args, "masker", None))
    return daemon.run()


class Daemon:
    """Owns the resources of one daemon process (lock, database) around the Service."""

    def __init__(
        self, config: Config, *, poll_only: bool = False, masker: Masker | None = None
    ) -> None:
        self.config = config
        self.poll_only = poll_only
        #: The daemon-wide masker (the log handler's): every registry password it can read.
        if masker is None:
            from scratchd.redact import Masker

            masker = Masker()
        self.masker = masker
        self._service: Service | None = None  # set once built; its config changes on SIGHUP
        self.engines: EnginePool | None = None  # [[engine]] blocks: placement and health

    def run(self) -> int:
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            return self._run()
        finally:
            sys.setswitchinterval(previous)  # the interpreter's again, when run in-process

    def _run(self) -> int:
        from scratchd.git import allow_foreign_repositories
        from scratchd.store import DaemonLock, StateDir, Store

        allow_foreign_repositories()
        state = StateDir(self.config.daemon.state_dir)
        state.root.mkdir(parents=True, exist_ok=True)
        lock = DaemonLock(state.root)
        lock.acquire()
        store = Store(state.db, masker=self.masker)
        registry_settings(self.config, self.masker)  # masked before the first build starts
        sender = self.sender(store).start()  # beside the build path, never in it
        doorbell = None
        try:
            service = self.service(state, store)
            service.install_signal_handlers()
            service.on_activity(sender.wake)
            if self.engines is not None:
                service.on_reload(self.engines.reconfigure)
            from scratchd.store.wake import Doorbell

            doorbell = Doorbell(state.root, service.wake)
            doorbell.start()
            count = len(self.config.repos)
            log.warning(
                "scratchd daemon started: %d %s, state in %s",
                count,
                "repository" if count == 1 else "repositories",
                state.root,
            )
            if self.engines is not None:
                self.engines.start()
            try:
                return service.run()
            finally:
                if self.engines is not None:
                    self.engines.stop()
        finally:
            if doorbell is not None:
                doorbell.stop()
            sender.stop()
            store.close()
            lock.release()

    def service(self, state: StateDir, store: Store) -> Service:
        from scratchd.config import load_config
        from scratchd.git.checkout import Checkout
        from scratchd.git.notes import write_note
        from scratchd.git.watcher import Watcher
        from scratchd.image.attest import AttestSettings
        from scratchd.runner.executor import Executor
        from scratchd.scheduler import Policy, Scheduler
        from scratchd.sdnotify import Notifier
        from scratchd.service import Service
        from scratchd.workers import OutputRouter, WorkerPool

        scheduler = Scheduler(store, Policy.from_config(self.config))
        router = OutputRouter()
        d = self.config.daemon
        pools: list[WorkerPool] = []
        self.engines = engine_pool(
            self.config, state.root, lambda: [str(b.id) for p in pools for b in p.running()]
        )
        executor = Executor(
            engine_backends(
                self.engines.endpoints if self.engines else {}, priority=self.build_priority
            ),
            router,
            registry_client_factory=self.registry_clients(),
            image_store=state.oci,
            bake_limits=bake_limits(self.config.daemon),
            attest=AttestSettings(d.sbom, d.provenance, d.builder_id),
        )
        # Not under cache/: that holds each repository's WERCKER_CACHE_DIR, which a
        # repository named "x.git" would share with the mirror of "x".
        checkout = Checkout(state.root / "mirrors")

        def make_watcher(sink: WatchSink) -> Watcher:
            return Watcher(
                sink, poll_interval=self.config.daemon.poll_interval, inotify=not self.poll_only
            )

        def make_pool(config: ConfigGetter, on_done: Callable[[], None]) -> WorkerPool:
            pools.append(
                WorkerPool(
                    store=store,
                    scheduler=scheduler,
                    executor=executor,
                    checkout=checkout,
                    state=state,
                    config=config,
                    router=router,
                    on_done=on_done,
                    notes_writer=write_note,
                    new_masker=self.build_masker,
                    engines=self.engines.placer if self.engines else None,
                )
            )
            return pools[-1]

        self._service = Service(
            self.config,
            store=store,
            scheduler=scheduler,
            make_watcher=make_watcher,
            make_pool=make_pool,
            loader=load_config,
            policy_of=Policy.from_config,
            notifier=Notifier.from_environ(unset=True),
        )
        return self._service

    def build_priority(self) -> BuildPriority:
        """Builds' CPU priority from the *current* config: a SIGHUP applies to the next."""
        daemon = (self._service.config if self._service is not None else self.config).daemon
        return BuildPriority(daemon.build_nice, daemon.build_cpu_shares, daemon.build_sched_idle)

    def build_masker(self):
        """A new build's masker: the daemon's (re-read now) as parent, for its own secrets.

        Registry passwords are read again at each build start, so a SIGHUP that
        added a registry or a rotated password file is masked from the build's
        first line, even in a host step that ``cat``s the file.
        """
        from scratchd.redact import Masker

        config = self._service.config if self._service is not None else self.config
        registry_settings(config, self.masker)
        return Masker(parents=(self.masker,))

    def sender(self, store):
        """The notification sender; it reads sinks from the *current* config (SIGHUP)."""
        from scratchd.cli.notify import commit_facts
        from scratchd.notify import Sender

        def config():
            return self._service.config if self._service is not None else self.config

        return Sender(store, config, commit_facts=commit_facts(config), mask=self.masker.add)

    def registry_clients(self):
        """A ``(ref, credential) -> RegistryClient`` factory reading the *current* config.

        Credentials are read at each push, from the config the service holds
        now: a SIGHUP that adds a registry, or a rotated token file, applies
        to the next push without a restart. Passwords are masked in logs.
        Every push shares one long-lived client's connections, tokens and
        blob memory, so a layer pushed for one repository is mounted, not
        uploaded again, when another repository of that registry needs it.
        """
        from scratchd.registry.client import RegistryClient
        from scratchd.registry.credentials import CredentialStore
        from scratchd.registry.http import HttpClient
        from scratchd.runner.steps.publish import registry_client_factory

        limits = registry_limits(self.config.daemon)
        shared = RegistryClient(CredentialStore(), http=HttpClient(limits))  # no own credentials

        def make(ref, credential):
            config = self._service.config if self._service is not None else self.config
            configured, insecure = registry_settings(config, self.masker)
            return registry_client_factory(configured=configured, insecure=insecure, shared=shared)(
                ref, credential
            )

        return make


def bake_limits(daemon):
    """The optional caps of every bake, from the ``[daemon]`` table (read at start)."""
    from scratchd.image.tree import Limits

    return Limits(
        max_file_size=daemon.bake_max_file_size,
        max_total_size=daemon.bake_max_total_size,
        timeout=daemon.bake_timeout,
    )


def registry_limits(daemon):
    """The registry client's bounds from the ``[daemon]`` table (read at start)."""
    from scratchd.registry.http import HttpLimits

    return HttpLimits(
        connect_timeout=daemon.registry_connect_timeout,
        read_timeout=daemon.registry_read_timeout,
        deadline=daemon.registry_request_timeout,
        max_response=daemon.registry_max_response,
    )


def registry_settings(config, masker=None) -> tuple[dict, tuple[str, ...]]:
    """``({host: (username, Secret)}, insecure hosts)`` from the config's registries.

    Every password read is added to ``masker`` (the daemon's), so it is masked
    in all daemon records and every build's output.
    """
    from scratchd.errors import CredentialError

    configured = {}
    for host, reg in config.registries.items():
        try:
            password = reg.password()
        except CredentialError as exc:
            log.error("%s (pushing to %s without a password)", exc, host)
            continue
        if password is not None and masker is not None:
            masker.add(password)
        configured[host] = (reg.username, password)
    return configured, tuple(h for h, r in config.registries.items() if r.insecure)


def backend_factory(kind: str, priority: BuildPriority | None = None):
    """``"host"`` → processes on this machine; ``"docker"`` → containers from the box.

    ``priority`` lowers the build's CPU priority below the daemon's.
    """
    return engine_backends({}, priority=lambda: priority or BuildPriority())(kind)


def _log_at_info() -> None:
    logging.getLogger().setLevel(logging.INFO)
