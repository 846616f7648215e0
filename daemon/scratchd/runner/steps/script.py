"""The ``script`` step: the code runs in the pipeline's shell, in ``cwd``.

The parser has already prepended ``set -e`` (unless the code starts with
``#!``), so a failing command fails the step as in wercker.
"""

from __future__ import annotations

from scratchd.pipeline.env import expand
from scratchd.runner.steps import StepContext, StepOutcome


def run(ctx: StepContext) -> StepOutcome:
    cwd = expand(ctx.step.cwd or ctx.step.prop("cwd"), ctx.env)
    ctx.run_script(ctx.step.code, cwd=cwd)
    return StepOutcome()
