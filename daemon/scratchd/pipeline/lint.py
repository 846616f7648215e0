"""``scratchd lint``: every problem of a wercker.yml, never a traceback.

Lint and the parser share one code path (:func:`compile_plan`), so a file
that lints without errors is exactly a file ``parse_plan`` accepts.
"""

from __future__ import annotations

from pathlib import Path

from scratchd.errors import PipelineSyntaxError
from scratchd.pipeline.diagnostics import ERROR, Diagnostic
from scratchd.pipeline.parse import compile_plan, decode


def lint(
    text: str,
    path: str,
    root: Path | None = None,
    pipelines: tuple[str, ...] = (),
    secret_names: frozenset[str] = frozenset(),
) -> list[Diagnostic]:
    """Errors and warnings of wercker.yml ``text``, in file order.

    ``root`` is the repository directory, when known, so vendored steps in
    ``.scratchd/steps/`` are recognised. ``pipelines``: lint as a run of
    exactly these would (default: the pipelines the daemon runs); ``secret_names``
    are the variables of the secrets file the builds will get, when known.
    """
    _, found = compile_plan(text, path, root, requested=pipelines, secret_names=secret_names)
    return found


def lint_file(
    path: Path, pipelines: tuple[str, ...] = (), secret_names: frozenset[str] = frozenset()
) -> list[Diagnostic]:
    """Like :func:`lint` for a file; unreadable or non-UTF-8 files are errors too."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return [Diagnostic(0, 0, ERROR, f"cannot read: {exc.strerror or exc}")]
    try:
        text = decode(data, str(path))
    except PipelineSyntaxError as exc:
        return [Diagnostic(exc.line, exc.column, ERROR, exc.reason)]
    return lint(text, str(path), path.parent, pipelines, secret_names)
