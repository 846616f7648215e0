"""``scratchd build [REPO_PATH]``: run a commit's wercker.yml once, like ``wercker build``.

The commit's tree is exported into a fresh temporary directory, so the
repository's work tree and index are never touched and uncommitted edits
never leak into a build. Output is streamed with step headers; a summary
with step durations and image digests follows. Exit status 0 when the build
passed, 1 when it failed (or was interrupted).
"""

from __future__ import annotations

import argparse

from scratchd.models import BuildStatus


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "build",
        help="run a commit's wercker.yml pipelines once (build, then deploy)",
        description="Export a commit (default HEAD) into a fresh directory and run its "
        "wercker.yml pipelines; the work tree and index are never touched.",
    )
    p.add_argument("repo", nargs="?", default=".", metavar="REPO_PATH", help="default: .")
    p.add_argument("--commit", default="HEAD", metavar="REV", help="sha, branch or tag")
    p.add_argument(
        "--pipeline",
        default="",
        metavar="NAMES",
        help="comma-separated pipelines to run in order (default: build,deploy as present)",
    )
    p.add_argument(
        "--deploy-target",
        default="",
        metavar="NAME",
        help="run this old-style deploy target of the deploy pipelines (wercker v1 targets)",
    )
    p.add_argument("--executor", choices=("host", "docker"), default="docker")
    p.add_argument("--env", action="append", default=[], metavar="K=V", help="repeatable")
    p.add_argument("--secrets-file", metavar="FILE", help="K=V lines: env values, masked")
    p.add_argument(
        "--image-store", metavar="DIR", help="OCI layout for pushes without a repository"
    )
    p.add_argument("--cache-dir", metavar="DIR", help="$WERCKER_CACHE_DIR (default: per repo)")
    p.add_argument("--keep", action="store_true", help="keep the work dir (path is printed)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    from scratchd.redact import Redactor

    work = Path(tempfile.mkdtemp(prefix="scratchd-build-"))
    try:
        masker = Redactor()  # the build's one masker, fed while the build is prepared
        plan = _prepare(args, work, masker)
        printer = Printer(sys.stdout, quiet=args.json)
        executor = _executor(args, printer)
        outcome = _run_cancellable(executor, plan, masker)
        if args.json:
            import json

            print(json.dumps(result_json(outcome, plan), indent=2))
        else:
            print(summary(outcome, args.executor))
        if outcome.status == BuildStatus.ERROR:  # ours, not the build's: say so on stderr
            print(f"scratchd: error: {outcome.message}", file=sys.stderr)
        return 0 if outcome.passed else 1
    finally:
        if args.keep:
            print(f"work dir kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def _prepare(args: argparse.Namespace, work, masker):
    """Export the commit and compile it with the CLI's env, secrets and pipelines."""
    from pathlib import Path

    from scratchd.errors import UsageError
    from scratchd.git import allow_foreign_repositories
    from scratchd.git.export import export_tree
    from scratchd.prepare import prepare_build

    env = {}
    for item in args.env:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env {item!r} is not K=V")
        env[key] = value
    source = work / "source"
    allow_foreign_repositories()  # as the scratchd user, the repository is someone else's
    commit = export_tree(args.repo, args.commit, source)
    return prepare_build(
        source=source,
        pipeline_file="wercker.yml",
        # Errors name the file in the repository (at the commit), not our temporary copy.
        shown=str(Path(args.repo) / "wercker.yml"),
        missing=f"{args.repo}: commit {commit.sha[:12]} has no wercker.yml",
        commit=commit,
        masker=masker,
        secrets_file=Path(args.secrets_file) if args.secrets_file else None,
        work_dir=work / "pipelines",
        cache_dir=Path(args.cache_dir) if args.cache_dir else _default_cache(commit),
        pipelines=tuple(n.strip() for n in args.pipeline.split(",") if n.strip()),
        executor=args.executor,
        env=env,
        deploy_target=args.deploy_target,
    )


def _default_cache(commit):
    import os
    from pathlib import Path

    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    name = "-".join(p for p in (commit.domain, commit.owner, commit.repository) if p)
    return Path(base) / "scratchd" / "build-cache" / (name or "repository")


def _executor(args: argparse.Namespace, printer):
    from pathlib import Path

    from scratchd.runner.executor import Executor
    from scratchd.runner.steps.publish import registry_client_factory

    return Executor(
        _backend_factory,
        printer.line,
        registry_client_factory=registry_client_factory(),
        image_store=Path(args.image_store) if args.image_store else None,
    )


def _backend_factory(kind: str):
    if kind == "host":
        from scratchd.runner.host import HostBackend

        return HostBackend()
    from scratchd.runner.docker_backend import DockerBackend

    return DockerBackend()


def _run_cancellable(executor, plan, masker):
    """Run in a worker thread so Ctrl-C cancels the build (and its teardown runs)."""
    import threading

    cancel = threading.Event()
    box: dict = {}

    def work() -> None:
        try:
            box["result"] = executor.run(plan, cancel, masker)
        except BaseException as exc:  # handed to the main thread below
            box["error"] = exc

    thread = threading.Thread(target=work, name="scratchd-build")
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except KeyboardInterrupt:
        cancel.set()
        thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]


class Printer:
    """Streams build output as it comes: headers as they are, step lines indented."""

    def __init__(self, stream, *, quiet: bool = False) -> None:
        self._stream = stream
        self._quiet = quiet

    def line(self, line) -> None:
        if self._quiet:
            return
        if line.stream == "info":
            text = line.text
        elif line.stream == "stderr":
            text = f"  ! {line.text}"
        else:
            text = f"    {line.text}"
        print(text, file=self._stream, flush=True)


def summary(result, executor_kind: str) -> str:
    """Step table with durations, digests, and the verdict naming a failed step."""
    rows = [f"\nsummary ({executor_kind} executor, build {result.build_id[:12]}):"]
    for step in result.steps:
        after = " (after)" if step.after else ""
        rows.append(f"  {step.status:<9} {step.duration:7.1f}s  {step.pipeline}/{step.name}{after}")
        for image in step.images:
            rows.append(f"{'':21}image {image}")
        if step.digest:
            rows.append(f"{'':21}digest {step.digest}")
    if result.passed:
        rows.append(f"build passed in {result.duration:.1f}s")
    elif result.failed_step:
        code = f" (exit status {result.exit_code})" if result.exit_code is not None else ""
        rows.append(
            f"build failed: step {result.failed_pipeline}/{result.failed_step}{code}: "
            f"{result.message}"
        )
    else:
        rows.append(f"build {result.status}: {result.message}")
    return "\n".join(rows)


def result_json(result, plan) -> dict:
    """The build result for scripts; output lines are already redacted."""
    return {
        "build_id": result.build_id,
        "status": str(result.status),
        "commit": plan.commit.sha,
        "branch": plan.commit.branch,
        "failed_pipeline": result.failed_pipeline,
        "failed_step": result.failed_step,
        "exit_code": result.exit_code,
        "message": result.message,
        "duration": round(result.duration, 3),
        "digests": list(result.digests),
        "steps": [
            {
                "pipeline": s.pipeline,
                "name": s.name,
                "status": s.status,
                "after": s.after,
                "duration": round(s.duration, 3),
                "exit_code": s.exit_code,
                "message": s.message,
                "digest": s.digest,
                "images": list(s.images),
            }
            for s in result.steps
        ],
        "output": result.output,
    }
