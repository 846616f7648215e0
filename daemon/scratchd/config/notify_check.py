"""``check-config`` for sinks: secret files, credentials and exec programs on this machine.

What the loader cannot know from the file alone. URL syntax apprise
understands and the webhook secret's format are checked by the CLI, which
may import the notify layer; this module stays inside config.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def check_sinks(checker, config, env: dict[str, str]) -> None:
    for sink in config.notify.sinks:
        where = sink.where
        if sink.url_file is not None:
            checker.secret_file((*where, "url_file"), sink.url_file)
        if sink.secret_file is not None:
            checker.secret_file((*where, "secret_file"), sink.secret_file)
        if sink.secret_credential:
            checker.credential((*where, "secret_credential"), sink.secret_credential, env)
        if sink.type == "exec":
            _program(checker, (*where, "command"), sink.command[0])
        if sink.type == "webhook" and sink.secret_file is None and not sink.secret_credential:
            checker.add(
                (*where, "url"),
                "webhook is unsigned (set secret_file or secret_credential)",
                "warning",
            )
        known = {r.name for r in config.repos}
        for repo in sink.repos:
            if repo not in known:
                checker.add((*where, "repos"), f"no repository named {repo!r} is configured")


def _program(checker, key, program: str) -> None:
    found = shutil.which(program) if "/" not in program else program
    if found is None or not Path(found).is_file():
        checker.add(key, f"{program} not found")
    elif not os.access(found, os.X_OK):
        checker.add(key, f"{found} is not executable by this user")
