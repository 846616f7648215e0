"""scratchd.toml: load it into frozen dataclasses, check it against the machine.

``load_config(path)`` validates the file itself (types, unknown keys, globs,
cron lines, durations) and raises :class:`~scratchd.errors.ConfigError`
naming file, key and line. ``check_config(config)`` looks outside the file
(paths, git repositories, file permissions) and returns the problems found,
for ``scratchd check-config``.

The names below are imported on first use (:mod:`scratchd.lazy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scratchd.lazy import lazy_exports

if TYPE_CHECKING:
    from scratchd.config.check import Problem, check_config
    from scratchd.config.durations import format_duration, parse_duration
    from scratchd.config.load import (
        DEFAULT_CONFIG_PATH,
        default_config_path,
        load_config,
        parse_config,
    )
    from scratchd.config.model import (
        Config,
        DaemonConfig,
        RegistryConfig,
        RepoChanges,
        RepoConfig,
        repo_changes,
    )
    from scratchd.config.peek import state_location
    from scratchd.errors import ConfigError
    from scratchd.refglob import glob_match

#: Public name → the module that defines it.
_HOME = {
    "Problem": "scratchd.config.check",
    "check_config": "scratchd.config.check",
    "format_duration": "scratchd.config.durations",
    "parse_duration": "scratchd.config.durations",
    "DEFAULT_CONFIG_PATH": "scratchd.config.load",
    "state_location": "scratchd.config.peek",
    "default_config_path": "scratchd.config.load",
    "load_config": "scratchd.config.load",
    "parse_config": "scratchd.config.load",
    "Config": "scratchd.config.model",
    "DaemonConfig": "scratchd.config.model",
    "RegistryConfig": "scratchd.config.model",
    "RepoChanges": "scratchd.config.model",
    "RepoConfig": "scratchd.config.model",
    "repo_changes": "scratchd.config.model",
    "ConfigError": "scratchd.errors",
    "glob_match": "scratchd.refglob",
}

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "Problem",
    "RegistryConfig",
    "RepoChanges",
    "RepoConfig",
    "check_config",
    "default_config_path",
    "format_duration",
    "glob_match",
    "load_config",
    "parse_config",
    "parse_duration",
    "repo_changes",
    "state_location",
]


__getattr__ = lazy_exports(__name__, _HOME)
