"""wercker.yml ``workflows``: pipelines chained by ``requires``, filtered by branch.

wercker first kept workflows in its web UI, then read them from the file
(``wercker workflow``; its ``core/config.go`` and ``cmd/workflow.go``)::

    workflows:
      - name: main
        pipelines:
          - name: build
          - name: test
            requires: [build]
          - name: push
            pipelineName: deploy      # the wercker.yml pipeline, when named differently
            requires: [test, build]
            artifactPipeline: build   # whose output it works on, when it requires several
            branches: {only: master}  # scratchd's: a name, a list, or {ignore: [...]}

As in wercker, a workflow pipeline runs once every pipeline it requires ran,
whatever the order of the list (wercker ran the first listed pipeline that
was ready, again and again), and works on the output of what it requires:
its ``artifactPipeline``'s when it requires several, else every one's, each
in a directory named after the workflow pipeline that made it. Branch filters are
scratchd's (wercker set them in its web UI): a pipeline whose filter does
not match does not run, nor does anything that requires it. Without a
branch (lint) every filter matches, so lint sees every pipeline some branch
would run.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkflowPipeline:
    """One pipeline of a workflow: its node name, the wercker.yml pipeline it runs.

    (Read from YAML by :mod:`.workflowparse`; this module stays YAML-free
    because the runner's plan types refer to it.)
    """

    name: str
    pipeline: str
    requires: tuple[str, ...] = ()
    only: tuple[str, ...] = ()  # branch patterns (fnmatch); empty: every branch
    ignore: tuple[str, ...] = ()
    artifact: str = ""  # artifactPipeline: the required node whose output is the source


@dataclass(frozen=True)
class Workflow:
    name: str
    pipelines: tuple[WorkflowPipeline, ...] = ()


def run_order(workflow: Workflow, branch: str | None) -> list[WorkflowPipeline]:
    """The nodes that run for ``branch``, in wercker's order (its ``nextPipeline`` loop)."""
    ran: list[WorkflowPipeline] = []
    done: set[str] = set()  # nodes that ran or were filtered out
    passed: set[str] = set()
    while True:
        node = next(
            (
                n
                for n in workflow.pipelines
                if n.name not in done and all(r in passed for r in n.requires)
            ),
            None,
        )
        if node is None:
            return ran
        done.add(node.name)
        if _matches(node, branch):
            passed.add(node.name)
            ran.append(node)


def workflow_pipelines(workflows: tuple[Workflow, ...], branch: str | None) -> list[str]:
    """wercker.yml pipeline names the workflows run for ``branch``, in order, once each."""
    names: list[str] = []
    for workflow in workflows:
        for node in run_order(workflow, branch):
            if node.pipeline not in names:
                names.append(node.pipeline)
    return names


def required_source(workflows: tuple[Workflow, ...], pipeline: str) -> str | None:
    """The wercker.yml pipeline whose output ``pipeline`` works on ("" = the commit).

    None when the workflows do not say (the pipeline before it is used).
    """
    for workflow in workflows:
        by_name = {n.name: n for n in workflow.pipelines}
        for node in workflow.pipelines:
            if node.pipeline == pipeline:
                if not node.requires:
                    return ""
                source = node.artifact if node.artifact in node.requires else node.requires[0]
                required = by_name.get(source)
                return required.pipeline if required else ""
    return None


def fan_in(workflows: tuple[Workflow, ...], pipeline: str) -> tuple[tuple[str, str], ...]:
    """(directory, pipeline) pairs when ``pipeline`` requires several without an artifactPipeline.

    wercker gave such a pipeline every required pipeline's output, each in a
    directory of its source named after the workflow pipeline that made it
    (cmd/workflow.go ``ProjectPathsByPipeline``); () when one source is used.
    """
    for workflow in workflows:
        by_name = {n.name: n for n in workflow.pipelines}
        for node in workflow.pipelines:
            if node.pipeline == pipeline:
                if len(node.requires) < 2 or node.artifact in node.requires:
                    return ()
                return tuple((r, by_name[r].pipeline) for r in node.requires if r in by_name)
    return ()


def _matches(node: WorkflowPipeline, branch: str | None) -> bool:
    if branch is None:
        return True
    if node.only and not any(fnmatch.fnmatchcase(branch, p) for p in node.only):
        return False
    return not any(fnmatch.fnmatchcase(branch, p) for p in node.ignore)
