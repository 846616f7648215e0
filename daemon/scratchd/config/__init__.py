"""scratchd.toml: load it into frozen dataclasses, check it against the machine.

``load_config(path)`` validates the file itself (types, unknown keys, globs,
cron lines, durations) and raises :class:`~scratchd.errors.ConfigError`
naming file, key and line. ``check_config(config)`` looks outside the file
(paths, git repositories, file permissions) and returns the problems found,
for ``scratchd check-config``.
"""

from scratchd.config.check import Problem, check_config
from scratchd.config.durations import format_duration, parse_duration
from scratchd.config.load import DEFAULT_CONFIG_PATH, default_config_path, load_config, parse_config
from scratchd.config.model import (
    Config,
    DaemonConfig,
    RegistryConfig,
    RepoChanges,
    RepoConfig,
    repo_changes,
)
from scratchd.errors import ConfigError
from scratchd.refglob import glob_match

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
]
