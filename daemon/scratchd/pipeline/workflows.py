"""wercker.yml ``workflows``: pipelines chained by ``requires``, filtered by branch.

wercker first kept workflows in its web UI, then read them from the file
(its "workflows in yml" format)::

    workflows:
      - name: main
        pipelines:
          - name: build
          - name: test
            requires: build
          - name: push
            pipelineName: deploy      # the wercker.yml pipeline, when named differently
            requires: [test]
            branches: {only: master}  # or a name, a list, or {ignore: [...]}

A workflow pipeline runs when its branch filter matches and every pipeline
it requires ran; a required pipeline's output is its source, as it was on
wercker. Without a branch (lint) every filter matches, so lint sees every
pipeline some branch would run.
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


@dataclass(frozen=True)
class Workflow:
    name: str
    pipelines: tuple[WorkflowPipeline, ...] = ()


def workflow_pipelines(workflows: tuple[Workflow, ...], branch: str | None) -> list[str]:
    """wercker.yml pipeline names the workflows run for ``branch``, in order, once each."""
    names: list[str] = []
    for workflow in workflows:
        ran: set[str] = set()
        for node in workflow.pipelines:
            if all(r in ran for r in node.requires) and _matches(node, branch):
                ran.add(node.name)
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
                required = by_name.get(node.requires[0])
                return required.pipeline if required else ""
    return None


def _matches(node: WorkflowPipeline, branch: str | None) -> bool:
    if branch is None:
        return True
    if node.only and not any(fnmatch.fnmatchcase(branch, p) for p in node.only):
        return False
    return not any(fnmatch.fnmatchcase(branch, p) for p in node.ignore)
