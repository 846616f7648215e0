"""``scratchd status``: is the daemon alive, what does it watch, what is queued and running.

Liveness comes from the daemon's lock, not from a clock: the daemon holds
an ``flock`` on ``<state_dir>/daemon.lock`` for its whole life and the kernel
drops it when the process dies (even by ``kill -9``), so "is the lock held?"
is exact and costs the daemon nothing. A row refreshed every few seconds
would cost a database write every few seconds, forever (issue: stillness).
The status row (what it watches, its one-line state) is written only when
that state changes. Exit status 0 when alive, 3 when not (like ``systemctl
status``), so scripts can wait on it.
"""

from __future__ import annotations

import argparse
import json
import time

from scratchd.cli.state import add_config_argument, ago, build_duration, load, open_store

NOT_RUNNING = 3


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="daemon liveness, watched repositories, queue and running builds",
        description="Show whether the daemon is alive, what it watches, the queue and "
        "running builds. Exit status 3 when the daemon is not running.",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scratchd.store import DaemonLock, StateDir, daemon_alive

    config = load(args)
    state = StateDir(config.daemon.state_dir)
    if not state.db.exists():
        print(f"daemon: not running (no state database in {config.daemon.state_dir} yet)")
        return NOT_RUNNING
    store = open_store(config)
    try:
        info, queued, running = store.daemon_info(), store.queued(), store.running()
    finally:
        store.close()
    now = time.time()
    alive = daemon_alive(info, DaemonLock(state.root).holder())
    watched = list(info.repos) if alive else [r.name for r in config.repos]
    if args.json:
        print(
            json.dumps(
                {
                    "alive": alive,
                    "daemon": info.__dict__ if info else None,
                    "watched": watched,
                    "queued": [b.to_json() for b in queued],
                    "running": [b.to_json() for b in running],
                    "engines": _engine_status(config).get("engines", []),
                },
                indent=2,
            )
        )
    else:
        print(_daemon_line(info, alive, now))
        print(f"watched repositories ({len(watched)}): {', '.join(watched) or '-'}")
        print(f"queued: {len(queued)}")
        for b in queued:
            retry = f", retry in {ago(b.retry_after - now)}" if b.retry_after else ""
            waiting = ago(now - b.created_at)
            print(f"  {b.id}  {b.repo}  {b.branch}  {b.short_sha}  waiting {waiting}{retry}")
        print(f"running: {len(running)}")
        for b in running:
            flag = "  (cancel requested)" if b.cancel_requested else ""
            print(
                f"  {b.id}  {b.repo}  {b.branch}  {b.short_sha}  for {build_duration(b, now)}{flag}"
            )
        _print_engines(config)
    return 0 if alive else NOT_RUNNING


def _engine_status(config) -> dict:
    from scratchd.engine_status import FILE_NAME, read_status

    return read_status(config.daemon.state_dir / FILE_NAME)


def _print_engines(config) -> None:
    """The ``[[engine]]`` pool as the daemon last saw it, and repositories it cannot place."""
    from scratchd.config.engines import unplaceable
    from scratchd.engine_status import FILE_NAME, engine_lines, read_status

    if not config.engines and not any(r.labels for r in config.repos):
        return
    status = read_status(config.daemon.state_dir / FILE_NAME)
    print(f"engines ({len(config.engines)}):")
    for line in engine_lines(status) or [f"  {e.name}  (not probed yet)" for e in config.engines]:
        print(line)
    for repo in config.repos:
        why = unplaceable(tuple(repo.labels), config.engines)
        if why is not None:
            print(f"  repository {repo.name} waits forever: {why}")


def _daemon_line(info, alive: bool, now: float) -> str:
    if info is None:
        return "daemon: not running (no heartbeat in this state directory yet)"
    if not alive:
        return (
            f"daemon: not running (last heartbeat {ago(now - info.updated_at)} ago, "
            f"pid {info.pid}, status {info.status})"
        )
    return (
        f"daemon: running (pid {info.pid} on {info.hostname}, up {ago(now - info.started_at)}, "
        f"state as of {ago(now - info.updated_at)} ago): {info.status}"
    )
