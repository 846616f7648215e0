"""The ``workflows`` list of a wercker.yml → :class:`~.workflows.Workflow` values."""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scratchd.pipeline.diagnostics import Collector
from scratchd.pipeline.workflows import Workflow, WorkflowPipeline
from scratchd.pipeline.yamlnodes import Document, is_null, kind, plain_text, where


class WorkflowReader:
    """Reads the ``workflows`` list, reporting problems to a Collector."""

    def __init__(self, doc: Document, out: Collector) -> None:
        self.doc, self.out = doc, out

    def read(self, node: Node) -> tuple[Workflow, ...]:
        if is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.out.error(where(node), f"workflows must be a list, not {kind(node)}")
            return ()
        flows = (self._workflow(item) for item in node.value)
        return tuple(f for f in flows if f is not None)

    def _workflow(self, node: Node) -> Workflow | None:
        if not isinstance(node, MappingNode):
            self.out.error(where(node), f"a workflow must be a map, not {kind(node)}")
            return None
        fields = {k: v for k, _, v in self.doc.entries(node, self.out)}
        name = self._text(fields.get("name"), "workflow name") or f"workflow-{where(node)[0]}"
        items = fields.get("pipelines")
        if not isinstance(items, SequenceNode):
            self.out.error(where(node), f"workflow '{name}' needs a list of 'pipelines'")
            return None
        read = [self._pipeline(name, item) for item in items.value]
        nodes = tuple(p for p in read if p is not None)
        known: set[str] = set()
        for p in nodes:
            for r in p.requires:
                if r not in known:
                    self.out.warn(
                        where(items),
                        f"workflow '{name}': '{p.name}' requires '{r}', which does not run "
                        "before it; it never runs",
                    )
            known.add(p.name)
        return Workflow(name=name, pipelines=nodes)

    def _pipeline(self, workflow: str, node: Node) -> WorkflowPipeline | None:
        if isinstance(node, ScalarNode) and not is_null(node):
            return WorkflowPipeline(name=node.value, pipeline=node.value)
        if not isinstance(node, MappingNode):
            self.out.error(where(node), f"a pipeline of workflow '{workflow}' must be a map")
            return None
        fields = {k: v for k, _, v in self.doc.entries(node, self.out)}
        name = self._text(fields.get("name"), "pipeline name")
        if not name:
            self.out.error(where(node), f"a pipeline of workflow '{workflow}' needs a 'name'")
            return None
        target = fields.get("pipelineName") or fields.get("pipeline")
        only, ignore = self._branches(fields.get("branches") or fields.get("branch"))
        return WorkflowPipeline(
            name=name,
            pipeline=self._text(target, "pipelineName") or name,
            requires=self._names(fields.get("requires")),
            only=only,
            ignore=ignore,
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
