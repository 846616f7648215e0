"""The ``scratchd`` command line.

Each sub-command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` — a
function ``(args) -> int``. Modules import only argparse-level things at
the top: heavy libraries (docker, pygit2, requests) are imported inside the
handlers, so ``scratchd bake`` starts fast and never loads the docker SDK.

Errors from the :mod:`scratchd.errors` tree become one line on stderr and
the error's exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from scratchd import __version__
from scratchd.errors import ScratchdError

# Sub-command modules, in the order ``scratchd --help`` lists them.
COMMANDS = (
    "run",
    "demo",
    "build",
    "bake",
    "push",
    "lint",
    "builds",
    "logs",
    "trigger",
    "cancel",
    "status",
    "check_config",
)


def build_parser() -> argparse.ArgumentParser:
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
    for name in COMMANDS:
        module = _command_module(name)
        if module is not None:
            module.register(subparsers)
    return parser


def _command_module(name: str):
    """Import ``scratchd.cli.<name>``; a command not written yet is left out."""
    try:
        return importlib.import_module(f"scratchd.cli.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"scratchd.cli.{name}":
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, getattr(args, "log_to_journal", None))
    try:
        return int(args.handler(args) or 0)
    except ScratchdError as exc:
        print(f"scratchd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("scratchd: interrupted", file=sys.stderr)
        return 130


def _configure_logging(verbosity: int, journal: bool | None) -> None:
    """Route log records to journald when it is our stderr, else to stderr.

    Configured once per process here, at the edge; library code only calls
    ``logging.getLogger(__name__)`` and passes journald fields as ``extra``
    (``REPO``, ``BRANCH``, ``COMMIT``, ``BUILD_ID``, ``PIPELINE``, ``STEP``).
    """
    level = logging.WARNING - 10 * verbosity
    try:
        from scratchd.journal import install_handler
    except ModuleNotFoundError:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
        return
    install_handler(level=level, prefer_journal=journal)
