"""``scratchd trigger REPO [--branch B] [--commit SHA]``: queue a manual build now.

The build row is written straight into the state database, then the daemon
is woken through its FIFO (:mod:`scratchd.store.wake`), so it starts the build
at once instead of at a polling tick. The ref's last-seen sha is left alone, so
the daemon still queues any pushed commits it has not seen.
"""

from __future__ import annotations

import argparse

from scratchd.cli.state import add_config_argument, load, open_store


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "trigger",
        help="queue a build of a branch tip or a commit",
        description="Queue a manual build. Default: the tip of the repository's HEAD branch "
        "(or its first watched branch).",
    )
    add_config_argument(parser)
    parser.add_argument("repo", metavar="REPO", help="repository name from the config")
    parser.add_argument(
        "--branch",
        metavar="B",
        help="build this branch's tip (with --commit: the branch to build it as); "
        "a full ref such as refs/tags/v1 also works",
    )
    parser.add_argument("--commit", metavar="SHA", help="build this commit (full or short sha)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from scratchd.errors import UsageError
    from scratchd.models import Trigger
    from scratchd.scheduler import Policy, Scheduler
    from scratchd.store import StateDir
    from scratchd.store.wake import ring

    config = load(args)
    repo = config.repo(args.repo)
    if repo is None:
        import difflib

        names = [r.name for r in config.repos]
        close = difflib.get_close_matches(args.repo, names, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f" (configured: {', '.join(names)})"
        raise UsageError(f"no repository named {args.repo!r} in {config.path}{hint}")
    commit = resolve(repo, args.branch, args.commit)
    store = open_store(config, create=True)
    try:
        scheduler = Scheduler(store, Policy.from_config(config))
        submitted = scheduler.submit([commit], Trigger.MANUAL, update_ref=False)
    finally:
        store.close()
    ring(StateDir(config.daemon.state_dir).root)
    for build in submitted.queued:
        print(f"queued build {build.id}: {build.repo} {build.branch} {build.short_sha}")
    return 0


def resolve(repo, branch: str | None, commit: str | None):
    """The :class:`~scratchd.models.Commit` to build; a one-line error when it cannot be."""
    import pygit2

    from scratchd.errors import GitError, UsageError
    from scratchd.git import allow_foreign_repositories
    from scratchd.models import Commit

    allow_foreign_repositories()  # run as the scratchd user, the repository is someone else's
    try:
        git = pygit2.Repository(str(repo.path))
    except (pygit2.GitError, KeyError) as exc:
        raise GitError(f"{repo.name}: cannot open repository {repo.path}: {exc}") from None
    ref = _full_ref(branch) if branch else None
    if commit is None:
        ref = ref or _default_ref(git, repo)
        if ref not in git.references:
            raise UsageError(f"{repo.name}: no branch or tag {branch or ref!r} in {repo.path}")
        target = git.references[ref].peel(pygit2.Commit)
    else:
        try:
            target = git.revparse_single(commit).peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            raise UsageError(f"{repo.name}: no commit {commit!r} in {repo.path}") from None
        ref = ref or _ref_containing(git, repo, target.id) or _default_ref(git, repo)
    return Commit(repo=repo.name, ref=ref, sha=str(target.id), time=target.commit_time)


def _full_ref(name: str) -> str:
    return name if name.startswith("refs/") else f"refs/heads/{name}"


def _default_ref(git, repo) -> str:
    """HEAD's branch when watched, else the first watched branch that exists."""
    try:
        head = git.lookup_reference("HEAD").target
    except (KeyError, ValueError):
        head = None
    if isinstance(head, str) and repo.watches_ref(head) and head in git.references:
        return head
    watched = sorted(
        r for r in git.references if r.startswith("refs/heads/") and repo.watches_ref(r)
    )
    if watched:
        return watched[0]
    if isinstance(head, str):
        return head
    from scratchd.errors import UsageError

    raise UsageError(f"{repo.name}: no watched branch exists in {repo.path}; use --branch")


def _ref_containing(git, repo, oid) -> str | None:
    """A branch whose tip is, or descends from, ``oid``: HEAD's, then watched ones, then any."""
    head = git.lookup_reference("HEAD").target if "HEAD" in git.references else None
    branches = sorted(r for r in git.references if r.startswith("refs/heads/"))
    branches.sort(key=lambda r: (r != head, not repo.watches_ref(r)))
    for ref in branches:
        tip = git.references[ref].target
        if tip == oid or git.descendant_of(tip, oid):
            return ref
    return None
