"""Which pipelines of a wercker.yml a run starts: one answer for lint and the daemon.

``scratchd lint`` and the compile step both ask :func:`select`, so a file
the daemon would refuse for having nothing to run is a lint error with the
same words, and a pipeline lint calls "not run" is one the daemon skips.

In order of precedence: pipelines asked for by name (``scratchd build
--pipeline``, ``scratchd lint --pipeline``: each must exist), the
repository config's ``pipelines`` (those the file has), the file's
``workflows`` (for the commit's branch; every branch when lint has none),
and otherwise ``build`` then ``deploy`` as present. The repository config's
default (``build``, ``deploy``) gives way to the file's workflows: only a
config naming other pipelines overrides them.
"""

from __future__ import annotations

from scratchd.errors import PipelineError
from scratchd.pipeline.plan import Pipeline, Plan
from scratchd.pipeline.workflows import workflow_pipelines

DEFAULT_PIPELINES = ("build", "deploy")


def select(
    plan: Plan,
    requested: tuple[str, ...] = (),
    configured: tuple[str, ...] = (),
    branch: str | None = None,
) -> list[Pipeline]:
    """The pipelines to run, in order; raises PipelineError (no path prefix) if none."""
    if requested:
        missing = [n for n in requested if plan.pipeline(n) is None]
        if missing:
            defined = ", ".join(p.name for p in plan.pipelines) or "none"
            raise PipelineError(f"no pipeline {missing[0]!r} (pipelines: {defined})")
        return [p for n in requested if (p := plan.pipeline(n)) is not None]
    if configured and not (plan.workflows and configured == DEFAULT_PIPELINES):
        chosen = [p for n in configured if (p := plan.pipeline(n)) is not None]
        if not chosen:
            raise PipelineError(f"none of the pipelines {', '.join(configured)} is defined")
        return chosen
    if plan.workflows:
        names = workflow_pipelines(plan.workflows, branch)
        chosen = [p for n in names if (p := plan.pipeline(n)) is not None]
        if not chosen and branch is None:
            raise PipelineError("its workflows name no pipeline the file defines")
        return chosen
    chosen = [p for n in DEFAULT_PIPELINES if (p := plan.pipeline(n)) is not None]
    if not chosen:
        raise PipelineError("has neither a 'build' nor a 'deploy' pipeline")
    return chosen
