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

# "<time> <stream> <pipeline>/<step>: ", as BuildLog writes it (the step ends at the first ": ").
# Anchored on a literal "\n" (the regex engine then skips ahead fast), so the data gets one
# in front.
STEP_LINE = re.compile(rb"\n(\S+) \S+ ([^\s/:]+/[^\n]+?): ")


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


def parse_steps(data: bytes, build: BuildRecord) -> list[Step]:
    """Steps of a whole log's bytes.

    A 20 MB log has ~200,000 lines, so no Python runs per line: one regex
    scan finds the step lines, and only where the step changes is the line
    number counted and the timestamp parsed.
    """
    steps: list[Step] = []
    current: Step | None = None
    current_key = last = None
    data = b"\n" + data
    line, counted = 1, 1
    for match in STEP_LINE.finditer(data):
        key = match.group(2)
        if key == current_key:
            last = match
            continue
        when = _stamp(match.group(1).decode("ascii", "replace"))
        if when is None:
            continue
        line += data.count(b"\n", counted, match.start() + 1)
        counted = match.start() + 1
        pipeline, _, name = key.decode("utf-8", "replace").partition("/")
        if current is not None:
            _end(current, last)
            current.ended = when  # a step ends where the next one starts
        current, current_key, last = Step(pipeline, name, line, when, when), key, match
        steps.append(current)
    if current is not None:
        _end(current, last)
    _statuses(steps, build)
    return steps


def _end(step: Step, last) -> None:
    if last is not None:
        step.ended = _stamp(last.group(1).decode("ascii", "replace")) or step.ended


def _statuses(steps: list[Step], build: BuildRecord) -> None:
    failed = build.failed_step or ""
    for step in steps:
        if failed and failed in (step.name, f"{step.pipeline}/{step.name}"):
            step.status = "failed"
    if steps and build.status == "running":
        steps[-1].status = "running"
    elif steps and build.status in ("failed", "error", "cancelled") and not failed:
        steps[-1].status = str(build.status)
