"""A build's steps with status and duration, read from its log.

Every step line in a build log is ``<time> <stream> <pipeline>/<step>: <text>``
(see :mod:`scratchd.store.logs`), so the log already says which steps ran,
in which order and when: a step starts at its first line and ends where the
next one starts (its own last line, for the last step). The status comes
from the build record: the step named in ``failed_step`` failed, the last
step of a running build is running, every other one that ran passed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from scratchd.store.records import BuildRecord

LINE = re.compile(r"(\S+) (\S+) (?:([^\s/:]+)/(.+?): )?")


@dataclass
class Step:
    pipeline: str
    name: str
    first_line: int
    started: float
    ended: float
    status: str = "passed"

    def to_json(self) -> dict:
        return {
            "pipeline": self.pipeline,
            "name": self.name,
            "line": self.first_line,
            "status": self.status,
            "duration": max(0.0, self.ended - self.started),
        }


def _stamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def parse_steps(lines, build: BuildRecord) -> list[Step]:
    """``lines`` iterates raw log lines (str or bytes), oldest first."""
    steps: list[Step] = []
    current: Step | None = None
    for number, raw in enumerate(lines, start=1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        match = LINE.match(text)
        if not match or not match.group(3):
            continue
        when = _stamp(match.group(1))
        if when is None:
            continue
        pipeline, name = match.group(3), match.group(4)
        if current is None or (current.pipeline, current.name) != (pipeline, name):
            if current is not None:
                current.ended = when
            current = Step(pipeline, name, number, when, when)
            steps.append(current)
        else:
            current.ended = when
    _statuses(steps, build)
    return steps


def _statuses(steps: list[Step], build: BuildRecord) -> None:
    failed = build.failed_step or ""
    for step in steps:
        if failed and failed in (step.name, f"{step.pipeline}/{step.name}"):
            step.status = "failed"
    if steps and build.status == "running":
        steps[-1].status = "running"
    elif steps and build.status in ("failed", "error", "cancelled") and not failed:
        steps[-1].status = str(build.status)
