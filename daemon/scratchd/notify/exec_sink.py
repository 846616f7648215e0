"""The ``exec`` sink: a program gets the event as JSON on stdin and as ``SCRATCHD_*`` variables.

Like Laminar's after-scripts, the program decides what to do (mail only when
the result changed, post to an internal system ...). A zero exit status is a
delivery; anything else is retried like an HTTP error. Its output goes to the
daemon's log at debug level, never into an error message, since a script may
echo what it was given.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess

from scratchd.errors import DeliveryError
from scratchd.notify.events import environment

log = logging.getLogger(__name__)


class ExecSink:
    def __init__(self, config) -> None:
        self.config = config

    def secrets(self) -> list[str]:
        return []

    def send(self, body: dict, event_id: str) -> None:
        name = self.config.name
        env = {**os.environ, **environment(body, event_id)}
        try:
            done = subprocess.run(
                list(self.config.command),
                input=json.dumps(body, sort_keys=True).encode(),
                env=env,
                capture_output=True,
                timeout=self.config.timeout,
                check=False,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise DeliveryError(f"sink {name}: {self.config.command[0]} not found") from None
        except PermissionError:
            raise DeliveryError(f"sink {name}: {self.config.command[0]} not executable") from None
        except subprocess.TimeoutExpired:
            raise DeliveryError(
                f"sink {name}: timed out after {self.config.timeout:g}s", unreachable=True
            ) from None
        if done.stdout or done.stderr:
            log.debug(
                "sink %s output: %s", name, (done.stdout + done.stderr).decode(errors="replace")
            )
        if done.returncode != 0:
            raise DeliveryError(f"sink {name}: exit status {done.returncode}")
