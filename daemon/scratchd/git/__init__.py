"""pygit2-based repository access: refs, tree export, notes, and the watcher."""

from __future__ import annotations


def allow_foreign_repositories() -> None:
    """Let this process read repositories owned by other users.

    libgit2, like git's ``safe.directory``, refuses a repository whose owner
    is not the current user ("not owned by current user"). scratchd's
    service user reads the repositories of the people it builds for, and so
    do the commands an operator runs as that user (``check-config``,
    ``trigger``, ``build``): every command that opens a configured
    repository calls this first. scratchd only reads those repositories
    (and writes notes when told to), so the check would only stop it from
    doing its job. The setting is process-wide in libgit2; it is set here,
    once, by the entry point, never by library code behind a caller's back.
    """
    import pygit2

    pygit2.option(pygit2.enums.Option.SET_OWNER_VALIDATION, 0)
