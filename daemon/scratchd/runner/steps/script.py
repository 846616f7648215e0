"""The ``script`` step: the code runs in the pipeline's shell, in ``cwd``.

The compiler has already prepended ``set -e`` (unless the code starts with
``#!``), so a failing command fails the step as in wercker.
"""

from __future__ import annotations

from scratchd.expand import expand
from scratchd.pipeline.buildplan import ScriptStep
from scratchd.runner.steps import StepContext, StepOutcome


def run(ctx: StepContext) -> StepOutcome:
    step = ctx.step
    assert isinstance(step, ScriptStep)
    ctx.run_script(step.code, cwd=expand(step.cwd, ctx.env))
    return StepOutcome()
