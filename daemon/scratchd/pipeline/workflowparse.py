"""The ``workflows`` list of a wercker.yml → :class:`~.workflows.Workflow` values.

Each workflow is checked the way wercker's ``WorkflowConfig.Validate`` checked
it before running it (its pipeline names unique, each a pipeline of the file,
each required one in the workflow, exactly one root, no cycle): a workflow
wercker refused to run is an error here too, with wercker's reason.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scratchd.pipeline.diagnostics import Collector
from scratchd.pipeline.workflows import Workflow, WorkflowPipeline
from scratchd.pipeline.yamlnodes import Document, is_null, kind, plain_text, where

#: Keys of a workflow pipeline: wercker's, then scratchd's branch filters.
_KEYS = ("name", "pipelineName", "requires", "artifactPipeline", "branches", "branch", "pipeline")


class WorkflowReader:
    """Reads the ``workflows`` list, reporting problems to a Collector."""

    def __init__(self, doc: Document, out: Collector) -> None:
        self.doc, self.out = doc, out

    def read(self, node: Node, defined: frozenset[str]) -> tuple[Workflow, ...]:
        """The workflows; ``defined`` names the file's pipelines."""
        if is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.out.error(where(node), f"workflows must be a list, not {kind(node)}")
            return ()
        flows = (self._workflow(item, defined) for item in node.value)
        return tuple(f for f in flows if f is not None)

    def _workflow(self, node: Node, defined: frozenset[str]) -> Workflow | None:
        if not isinstance(node, MappingNode):
            self.out.error(where(node), f"a workflow must be a map, not {kind(node)}")
            return None
        fields = {k: v for k, _, v in self.doc.entries(node, self.out)}
        name = self._text(fields.get("name"), "workflow name") or f"workflow-{where(node)[0]}"
        items = fields.get("pipelines")
        if not isinstance(items, SequenceNode):
            self.out.error(where(node), f"workflow '{name}' needs a list of 'pipelines'")
            return None
        read = [(item, self._pipeline(name, item)) for item in items.value]
        placed = [(item, p) for item, p in read if p is not None]
        self._validate(name, where(node), placed, defined)
        return Workflow(name=name, pipelines=tuple(p for _, p in placed))

    def _validate(
        self,
        workflow: str,
        at: tuple[int, int],
        placed: list[tuple[Node, WorkflowPipeline]],
        defined: frozenset[str],
    ) -> None:
        """wercker's checks, in its order, each error naming the workflow."""
        names = {p.name for _, p in placed}
        before = len(self.out.errors)
        seen: set[str] = set()
        for item, p in placed:
            if p.name in seen:
                self._invalid(where(item), workflow, f"duplicate pipeline {p.name}")
            seen.add(p.name)
            if p.pipeline not in defined:
                self._invalid(where(item), workflow, f"pipeline {p.pipeline} is not defined")
            for r in p.requires:
                if r not in names:
                    self._invalid(where(item), workflow, f"no pipeline {r} required by {p.name}")
            self._check_artifact(item, workflow, p)
        roots = [p.name for _, p in placed if not p.requires]
        if len(self.out.errors) > before:
            return  # wercker stopped at the first failed check
        if not roots:
            self._invalid(at, workflow, "no root pipeline")
        elif len(roots) > 1:
            self._invalid(at, workflow, f"multiple root pipelines: {', '.join(roots)}")
        else:
            cycle = _cycle([p for _, p in placed], roots[0])
            if cycle:
                self._invalid(at, workflow, f"contains cycle {' -> '.join(cycle)}")

    def _check_artifact(self, item: Node, workflow: str, p: WorkflowPipeline) -> None:
        if p.artifact and p.artifact not in p.requires:
            self.out.warn(
                where(item),
                f"workflow '{workflow}': artifactPipeline '{p.artifact}' of '{p.name}' is not "
                "one it requires; it is ignored, as wercker ignored it",
            )

    def _invalid(self, at: tuple[int, int], workflow: str, reason: str) -> None:
        self.out.error(at, f"invalid workflow '{workflow}': {reason} (wercker refused to run it)")

    def _pipeline(self, workflow: str, node: Node) -> WorkflowPipeline | None:
        if isinstance(node, ScalarNode) and not is_null(node):
            # yaml.v2 could not decode text into wercker's struct and left the item out
            self.out.warn(
                where(node),
                f"a pipeline of workflow '{workflow}' should be a map ({{name: {node.value}}}); "
                "wercker could not read this text and left the pipeline out of the workflow; "
                f"scratchd reads it as {{name: {node.value}}}",
            )
            return WorkflowPipeline(name=node.value, pipeline=node.value)
        if not isinstance(node, MappingNode):
            self.out.error(where(node), f"a pipeline of workflow '{workflow}' must be a map")
            return None
        entries = self.doc.entries(node, self.out)
        for key, key_node, _ in entries:
            if key not in _KEYS:
                self.out.warn(
                    where(key_node),
                    f"unknown key '{key}' of a pipeline of workflow '{workflow}' is ignored "
                    f"(known: {', '.join(_KEYS)})",
                )
        fields = {k: v for k, _, v in entries}
        name = self._text(fields.get("name"), "pipeline name")
        if not name:
            self.out.error(where(node), f"a pipeline of workflow '{workflow}' needs a 'name'")
            return None
        target = fields.get("pipelineName") or fields.get("pipeline")
        only, ignore = self._branches(fields.get("branches") or fields.get("branch"))
        requires = fields.get("requires")
        if isinstance(requires, ScalarNode) and not is_null(requires):
            # yaml.v2 could not decode text into wercker's []string: no requirement at all
            self.out.warn(
                where(requires),
                f"workflow '{workflow}': 'requires' of '{name}' should be a list "
                f"([{plain_text(requires)}]); wercker read this text as no requirement and "
                "refused the workflow for its several root pipelines; scratchd reads it as "
                f"[{plain_text(requires)}]",
            )
        return WorkflowPipeline(
            name=name,
            pipeline=self._text(target, "pipelineName") or name,
            requires=self._names(requires),
            only=only,
            ignore=ignore,
            artifact=self._text(fields.get("artifactPipeline"), "artifactPipeline"),
        )

    def _branches(self, node: Node | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if node is None or is_null(node):
            return (), ()
        if isinstance(node, MappingNode):
            fields = {k: v for k, _, v in self.doc.entries(node, self.out)}
            return self._names(fields.get("only")), self._names(fields.get("ignore"))
        return self._names(node), ()

    def _names(self, node: Node | None) -> tuple[str, ...]:
        if node is None or is_null(node):
            return ()
        if isinstance(node, ScalarNode):
            return tuple(n for n in plain_text(node).replace(",", " ").split() if n)
        if isinstance(node, SequenceNode):
            return tuple(plain_text(n) for n in node.value if isinstance(n, ScalarNode))
        self.out.error(where(node), f"expected a name or a list of names, not {kind(node)}")
        return ()

    def _text(self, node: Node | None, what: str) -> str:
        if node is None or is_null(node):
            return ""
        if not isinstance(node, ScalarNode):
            self.out.error(where(node), f"{what} must be text, not {kind(node)}")
            return ""
        return plain_text(node).strip()


def _cycle(nodes: list[WorkflowPipeline], root: str) -> list[str]:
    """A cycle reachable from ``root`` as a list of names (first = last), or []."""
    after: dict[str, list[str]] = {}
    for n in nodes:
        for r in n.requires:
            after.setdefault(r, []).append(n.name)
    path: list[str] = []
    finished: set[str] = set()

    def visit(name: str) -> list[str]:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in finished:
            return []
        path.append(name)
        for nxt in after.get(name, []):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        finished.add(name)
        return []

    return visit(root)
