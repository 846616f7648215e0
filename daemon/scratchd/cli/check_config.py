"""``scratchd check-config [--config PATH]``: validate the file and what it points to.

Exit 0 when usable (warnings allowed), 1 on any error. The summary shows
what the daemon would do with the file, never a password.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from scratchd.cli.state import add_config_argument


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate scratchd.toml and the repositories it names",
        description="Check the config file, repository paths, secrets file permissions and "
        "registry credentials sources; print a summary. Exit status 1 on problems.",
    )
    add_config_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scratchd.config import ConfigError, check_config, default_config_path, load_config
    from scratchd.config.check import ERROR
    from scratchd.git import allow_foreign_repositories

    path = args.config or default_config_path()
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(f"{exc}", file=sys.stderr)
        print(f"{path}: 1 error", file=sys.stderr)
        return 1
    print(summary(config))
    allow_foreign_repositories()  # the scratchd user checks repositories others own
    problems = check_config(config)
    problems += secrets_syntax(config, problems)
    problems += sink_targets(config, problems)
    problems += engines_reachable(config, problems)
    for problem in problems:
        print(problem, file=sys.stderr)
    errors = sum(p.severity == ERROR for p in problems)
    warnings = len(problems) - errors
    verdict = "FAILED" if errors else "OK"
    print(f"{verdict}: {errors} error(s), {warnings} warning(s)")
    return 1 if errors else 0


def secrets_syntax(config, known) -> list:
    """Parse each readable secrets file the way a build will (the pipeline's parser).

    Lives here, not in ``scratchd.config``, because config must not import
    the pipeline layer; the CLI is allowed to wire both.
    """
    from scratchd.config import Problem
    from scratchd.errors import ConfigError
    from scratchd.pipeline.secrets import load_secrets_file

    if all(repo.secrets_file is None for repo in config.repos):
        return []  # no secrets file: the pipeline's parser need not be imported
    flagged = {p.key for p in known}
    found = []
    for index, repo in enumerate(config.repos):
        key = f"repo[{index + 1}].secrets_file"
        if repo.secrets_file is None or key in flagged:
            continue
        try:
            load_secrets_file(repo.secrets_file)
        except ConfigError as exc:
            line = config.line_of(("repo", index, "secrets_file"))
            found.append(Problem(str(exc), key, line, str(config.path)))
    return found


def sink_targets(config, known) -> list:
    """Sink URLs apprise cannot use and webhook secrets that are not base64.

    Reads each secret the way the sender will; messages name the key, never the value.
    """
    if not config.notify.sinks:
        return []  # apprise and the webhook code are not worth importing for nothing
    from scratchd.config import Problem
    from scratchd.config.lines import dotted
    from scratchd.errors import CredentialError
    from scratchd.notify.apprise_sink import url_problem
    from scratchd.notify.webhook import signing_key

    flagged = {p.key for p in known}
    found = []

    def add(key, message):
        if dotted(key) not in flagged:
            found.append(Problem(message, dotted(key), config.line_of(key), str(config.path)))

    for sink in config.notify.sinks:
        url_key = (*sink.where, "url" if sink.url is not None else "url_file")
        try:
            if sink.type == "apprise":
                problem = url_problem(sink.target().reveal())
                if problem:
                    add(url_key, problem)
            secret = sink.secret() if sink.type == "webhook" else None
            if secret is not None:
                signing_key(secret)
        except CredentialError as exc:
            key = "secret_file" if sink.secret_file else "secret_credential"
            add((*sink.where, key) if "secret" in str(exc) else url_key, str(exc))
    return found


def engines_reachable(config, known) -> list:
    """Ping each ``[[engine]]`` whose TLS files are fine (the runner's probe, so here)."""
    if not config.engines:
        return []  # the probe imports the docker SDK: most of check-config's time, for nothing
    from scratchd.cli.engines import endpoint_of
    from scratchd.config import Problem
    from scratchd.errors import BackendError
    from scratchd.runner.engines import probe

    flagged = {p.key for p in known}
    found = []
    for index, engine in enumerate(config.engines):
        if f"engine[{index + 1}].tls" in flagged:
            continue
        with tempfile.TemporaryDirectory(prefix="scratchd-check-") as sockets:
            endpoint = endpoint_of(engine, Path(sockets))
            try:
                probe(endpoint, timeout=5)
            except BackendError as exc:
                line = config.line_of(("engine", index, "url"))
                key = f"engine[{index + 1}].url"
                found.append(Problem(f"not reachable: {exc}", key, line, str(config.path)))
            finally:
                if endpoint.tunnel is not None:
                    endpoint.tunnel.close()
    return found


def summary(config) -> str:
    """A readable picture of the effective config (defaults filled in)."""
    from scratchd.config import format_duration

    d = config.daemon
    lines = [
        f"config: {config.path}",
        f"state_dir: {d.state_dir}",
        f"daemon: executor {d.executor}, {d.max_concurrent_builds} concurrent build(s), "
        f"poll every {format_duration(d.poll_interval)}, shutdown grace "
        f"{format_duration(d.shutdown_grace)}, keep {d.keep_builds} builds per repository",
    ]
    for host, reg in sorted(config.registries.items()):
        user = reg.username or "(anonymous)"
        lines.append(f"registry {host}: user {user}, password from {reg.password_source}")
    for e in config.engines:
        labels = f", labels {', '.join(e.labels)}" if e.labels else ""
        tls = "TLS" if e.tls else "no TLS" if e.scheme == "tcp" else e.scheme
        lines.append(f"engine {e.name}: {e.url} ({tls}), {e.capacity} slot(s){labels}")
    lines.append(f"repositories: {len(config.repos)}")
    for repo in config.repos:
        refs = ", ".join(repo.branches) + (f"; tags {', '.join(repo.tags)}" if repo.tags else "")
        mode = "every commit" if repo.build_every_commit else "newest commit"
        extras = [f"executor {config.executor_for(repo)}", f"builds {mode}"]
        if repo.cancel_superseded:
            extras.append("cancels superseded builds")
        if repo.schedule:
            extras.append(f"cron {repo.schedule!r}")
        if config.notes_for(repo):
            extras.append("git notes")
        lines.append(f"  {repo.name}: {repo.path}")
        pipelines = " -> ".join(repo.pipelines)
        lines.append(f"    branches {refs}; pipelines {pipelines} from {repo.pipeline_file}")
        lines.append(f"    {', '.join(extras)}")
    for sink in config.notify.sinks:
        scope = ", ".join(sink.repos) if sink.repos else "all repositories"
        lines.append(f"notify {sink.name}: {sink.type} on {', '.join(sink.on)} ({scope})")
    return "\n".join(lines)
