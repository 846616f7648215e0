"""Package ``__init__`` files that import their public names on first use (PEP 562).

Importing any submodule runs its package's ``__init__`` first, so a package
that re-exports everything eagerly charges every command for all of it:
``scratchd builds`` paid for the config checker, the daemon lock and log
compression it never touches. A package lists ``name → defining module`` and
sets ``__getattr__ = lazy_exports(__name__, homes)``; type checkers still see
the names through imports under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, homes: Mapping[str, str]) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``homes[name]`` and caches the attribute."""

    def __getattr__(name: str) -> object:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    return __getattr__
