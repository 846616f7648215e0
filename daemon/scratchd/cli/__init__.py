"""The ``scratchd`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` — a
function ``(args) -> int``. Modules import only argparse-level things at
the top: heavy libraries (docker, pygit2, requests) are imported inside the
handlers, so ``scratchd bake`` starts fast and never loads the docker SDK.

A module may also offer ``quick_args(words)`` (:mod:`scratchd.cli.quick`):
``scratchd builds`` is typed often enough that argparse and the logging
set-up were most of its start-up; a plain command line skips both.

Errors from the :mod:`scratchd.errors` tree become one line on stderr and
the error's exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

from scratchd.errors import ScratchdError

if TYPE_CHECKING:
    import argparse

# Sub-command modules, in the order ``scratchd --help`` lists them.
COMMANDS = (
    "run",
    "demo",
    "build",
    "bake",
    "push",
    "inspect",
    "lint",
    "builds",
    "logs",
    "trigger",
    "cancel",
    "status",
    "check_config",
    "notify",
    "web",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The full parser, or one with only the sub-command ``only`` (start-up cost)."""
    import argparse

    from scratchd import __version__

    parser = argparse.ArgumentParser(
        prog="scratchd",
        description="CI daemon: wercker.yml pipelines for local git repositories, "
        "FROM-scratch images pushed to a registry.",
    )
    parser.add_argument("--version", action="version", version=f"scratchd {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (repeatable)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(f"scratchd.cli.{name}").register(subparsers)
    return parser


def requested_command(argv: list[str]) -> str | None:
    """The module of the known sub-command named in ``argv``, if there is one.

    Global options take no values, so the first word that is not an option
    is the command. Importing only that command's module keeps ``scratchd
    bake`` from paying for the daemon's modules; ``--help`` or an unknown
    word still gets the full parser and its list of commands.
    """
    word = next((a for a in argv if not a.startswith("-")), None)
    name = word.replace("-", "_") if word else None
    return name if name in COMMANDS else None


#: Commands whose module reads a plain command line itself: command word → module.
QUICK = {"builds": "builds"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _quick_args(argv) or _parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ScratchdError as exc:
        print(f"scratchd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("scratchd: interrupted", file=sys.stderr)
        return 130


def _quick_args(argv: list[str]):
    """The command's own reading of a plain ``COMMAND OPTIONS...``, or ``None``."""
    if not argv or argv[0] not in QUICK:
        return None
    return importlib.import_module(f"scratchd.cli.{QUICK[argv[0]]}").quick_args(argv[1:])


def _parse_args(argv: list[str]) -> argparse.Namespace:
    args = build_parser(requested_command(argv)).parse_args(argv)
    # The process's one masker: log records mask with it, and a command that reads
    # credentials (the daemon) adds them to it; handed over explicitly, never looked up.
    args.masker = _configure_logging(args.verbose, getattr(args, "log_to_journal", None))
    return args


def _configure_logging(verbosity: int, journal: bool | None):
    """Route log records to journald when it is our stderr, else to stderr.

    Configured once per process here, at the edge; library code only calls
    ``logging.getLogger(__name__)`` and passes journald fields as ``extra``
    (``REPO``, ``BRANCH``, ``COMMIT``, ``BUILD_ID`` = the build number, ``PIPELINE``,
    ``STEP``; a backend adds its per-run uuid as ``RUN_ID``).
    """
    import logging

    from scratchd.redact import Masker

    level = logging.WARNING - 10 * verbosity
    masker = Masker()
    try:
        from scratchd.journal import install_handler
    except ModuleNotFoundError:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
        return masker
    install_handler(level=level, prefer_journal=journal, redactor=masker)
    return masker
