"""The two keys a state reader needs, read without validating the whole file.

``scratchd builds`` only needs where the state lives (``[daemon] state_dir``)
and whether an engine pool is configured (the ENGINE column). Building the
whole :class:`~scratchd.config.Config` (every repository, sink and engine
turned into frozen dataclasses) cost more than the rest of the command, so
this reads the TOML and those two keys only. When either key is not plainly
valid, or the file does not parse, :func:`~scratchd.config.load_config` reads
it instead, so a wrong value fails with the same message naming file, key and
line; a mistake elsewhere in the file is ``check-config``'s to report.

Only the part before the first ``[[repo]]`` table is parsed when no line after
it can open ``[daemon]`` or an ``[[engine]]`` (TOML has no other way back into
a table): with 1,000 repositories, parsing them all was half of the command's
time. A cut that falls inside a multi-line string leaves a part that does
not parse, and the whole file goes to the loader.

Plain strings and :mod:`os.path` on purpose: importing :mod:`pathlib` costs more
than the query. Relative paths resolve next to the file, as the loader does.
"""

from __future__ import annotations

import os
import re
import tomllib

DEFAULT_CONFIG_PATH = "/etc/scratchd/scratchd.toml"
DEFAULT_STATE_DIR = "/var/lib/scratchd"  # also the loader's default (config.model)


_FIRST_REPO = re.compile(r"""^[ \t]*\[\[[ \t]*(["']?)repo\1[ \t]*\]\]""", re.M)
_DAEMON_OR_ENGINE = re.compile(r"""^[ \t]*\[\[?[ \t]*(["']?)(?:daemon|engine)\1[ \t]*[\].]""", re.M)

#: ``(state_dir, engines)``: where the state lives, and whether ``[[engine]]`` tables exist.
#: A plain tuple: a ``NamedTuple`` class costs a millisecond of ``exec`` at import.
StateLocation = tuple[str, bool]


def default_config_file() -> str:
    """``$SCRATCHD_CONFIG`` if set, else ``/etc/scratchd/scratchd.toml``."""
    return os.environ.get("SCRATCHD_CONFIG") or DEFAULT_CONFIG_PATH


def state_location(path: str | os.PathLike[str]) -> StateLocation:
    """Where the state of the config file ``path`` lives; raises ``ConfigError`` as the loader."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as file:
            data = tomllib.loads(_before_repos(file.read().decode()))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return _loaded(path)
    daemon = data.get("daemon", {})
    engines = data.get("engine", [])
    if not isinstance(daemon, dict) or not isinstance(engines, list):
        return _loaded(path)
    state_dir = daemon.get("state_dir", DEFAULT_STATE_DIR)
    if not isinstance(state_dir, str) or not state_dir or state_dir.startswith("~"):
        return _loaded(path)  # the loader's message (or its expansion of ``~``)
    return os.path.join(os.path.dirname(path), state_dir), bool(engines)


def _before_repos(text: str) -> str:
    """``text`` up to its first ``[[repo]]``, if ``[daemon]`` and ``[[engine]]`` cannot follow."""
    cut = _FIRST_REPO.search(text)
    if cut is None or _DAEMON_OR_ENGINE.search(text, cut.start()):
        return text
    return text[: cut.start()]


def _loaded(path: str) -> StateLocation:
    """The full loader's answer: its error, or the values it validated."""
    from pathlib import Path

    from scratchd.config.load import load_config

    config = load_config(Path(path))
    return str(config.daemon.state_dir), bool(config.engines)
