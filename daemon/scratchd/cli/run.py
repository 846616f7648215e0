"""``scratchd run [--config PATH]``: the daemon, in the foreground (systemd's ExecStart).

This is where the daemon's concrete classes are chosen and wired: the
store, scheduler, watcher, checkout, executor with its backends and
registry credentials, the worker pool and the sd_notify notifier. The
:class:`~scratchd.service.Service` itself only sees what it is given.
"""

from __future__ import annotations

import argparse
import logging

from scratchd.cli.state import add_config_argument

log = logging.getLogger(__name__)


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
    daemon = Daemon(config, poll_only=args.poll_only)
    return daemon.run()


class Daemon:
    """Owns the resources of one daemon process (lock, database) around the Service."""

    def __init__(self, config, *, poll_only: bool = False) -> None:
        self.config = config
        self.poll_only = poll_only
        self._service = None  # set once built; its config changes on SIGHUP

    def run(self) -> int:
        from scratchd.git import allow_foreign_repositories
        from scratchd.store import DaemonLock, StateDir, Store

        allow_foreign_repositories()
        state = StateDir(self.config.daemon.state_dir)
        state.root.mkdir(parents=True, exist_ok=True)
        lock = DaemonLock(state.root)
        lock.acquire()
        store = Store(state.db)
        sender = self.sender(store).start()  # beside the build path, never in it
        try:
            service = self.service(state, store)
            service.install_signal_handlers()
            count = len(self.config.repos)
            log.warning(
                "scratchd daemon started: %d %s, state in %s",
                count,
                "repository" if count == 1 else "repositories",
                state.root,
            )
            return service.run()
        finally:
            sender.stop()
            store.close()
            lock.release()

    def service(self, state, store):
        from scratchd.config import load_config
        from scratchd.git.checkout import Checkout
        from scratchd.git.notes import write_note
        from scratchd.git.watcher import Watcher
        from scratchd.runner.executor import Executor
        from scratchd.scheduler import Policy, Scheduler
        from scratchd.sdnotify import Notifier
        from scratchd.service import Service
        from scratchd.workers import OutputRouter, WorkerPool

        scheduler = Scheduler(store, Policy.from_config(self.config))
        router = OutputRouter()
        executor = Executor(
            backend_factory,
            router,
            registry_client_factory=self.registry_clients(),
            image_store=state.oci,
        )
        # Not under cache/: that holds each repository's WERCKER_CACHE_DIR, which a
        # repository named "x.git" would share with the mirror of "x".
        checkout = Checkout(state.root / "mirrors")

        def make_watcher(sink):
            return Watcher(
                sink, poll_interval=self.config.daemon.poll_interval, inotify=not self.poll_only
            )

        def make_pool(config, on_done):
            return WorkerPool(
                store=store,
                scheduler=scheduler,
                executor=executor,
                checkout=checkout,
                state=state,
                config=config,
                router=router,
                on_done=on_done,
                notes_writer=write_note,
            )

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

    def sender(self, store):
        """The notification sender; it reads sinks from the *current* config (SIGHUP)."""
        from scratchd.cli.notify import commit_facts
        from scratchd.notify import Sender

        def config():
            return self._service.config if self._service is not None else self.config

        return Sender(store, config, commit_facts=commit_facts(config), mask=_mask)

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
        from scratchd.runner.steps.publish import registry_client_factory

        shared = RegistryClient(CredentialStore())  # its own credentials are never used

        def make(ref, credential):
            config = self._service.config if self._service is not None else self.config
            configured, insecure = registry_settings(config)
            return registry_client_factory(configured=configured, insecure=insecure, shared=shared)(
                ref, credential
            )

        return make


def registry_settings(config) -> tuple[dict, tuple[str, ...]]:
    """``({host: (username, Secret)}, insecure hosts)`` from the config's registries."""
    from scratchd.errors import CredentialError

    configured = {}
    for host, reg in config.registries.items():
        try:
            password = reg.password()
        except CredentialError as exc:
            log.error("%s (pushing to %s without a password)", exc, host)
            continue
        if password is not None:
            _mask(password.reveal())
        configured[host] = (reg.username, password)
    return configured, tuple(h for h, r in config.registries.items() if r.insecure)


def backend_factory(kind: str):
    """``"host"`` → processes on this machine; ``"docker"`` → containers from the box."""
    if kind == "host":
        from scratchd.runner.host import HostBackend

        return HostBackend()
    from scratchd.runner.docker_backend import DockerBackend

    return DockerBackend()


def _mask(value: str) -> None:
    try:
        from scratchd.journal import installed_redactor
    except ModuleNotFoundError:
        return
    redactor = installed_redactor()
    if redactor is not None:
        redactor.add(value)


def _log_at_info() -> None:
    logging.getLogger().setLevel(logging.INFO)
