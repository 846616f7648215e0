"""The exception tree's rules that no single module can check for itself."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import scratchd
from scratchd.errors import (
    ImageError,
    ImageOptionError,
    InfrastructureError,
    InvalidReferenceError,
    UnknownBuildError,
)

PACKAGE = Path(scratchd.__file__).parent


def _names_usage_error(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    return any(
        (isinstance(node, ast.Name) and node.id == "UsageError")
        or (isinstance(node, ast.alias) and node.name == "UsageError")
        for node in ast.walk(tree)
    )


def test_usage_error_is_raised_only_by_the_cli():
    """A library error that says "usage" would be wrong when the daemon, not a
    command line, gave the bad input; only cli/ knows it talked to a user."""
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent.name != "cli" and path.name != "errors.py" and _names_usage_error(path)
    ]
    assert offenders == []


@pytest.mark.parametrize("error", [ImageOptionError, InvalidReferenceError, UnknownBuildError])
def test_bad_input_errors_keep_exit_code_2_and_are_never_retried(error):
    assert error("x").exit_code == 2
    assert not issubclass(error, InfrastructureError)


def test_an_image_option_error_is_an_image_error():
    assert issubclass(ImageOptionError, ImageError)
