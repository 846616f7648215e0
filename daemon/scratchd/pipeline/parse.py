"""wercker.yml text → :class:`Plan`.

The shape follows wercker's ``core/config.go``: a handful of top-level
settings (``box``, ``services``, ``command-timeout``, ``no-response-timeout``,
``source-dir``, ``workflows``; ``ignore-file`` is ignored) and every other
top-level key is a pipeline, except keys starting with a dot, which are
"hidden" holders of YAML anchors. wercker skipped top-level keys it could
not read as a pipeline (a stray scalar, a list, an anchor holder): they are
warnings here. A pipeline has ``box``, ``services``, ``steps``,
``after-steps``, ``base-path`` and ``docker``; any other key whose value is
a list of steps is an old-style deploy target, whatever its name; other
keys were ignored by wercker (warnings), except a nested pipeline (error).

Everything found wrong is collected (see :mod:`.diagnostics`);
:func:`parse_plan` raises the first error, :func:`compile_plan` returns what
lint shows.
"""

from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scratchd.errors import PipelineError, PipelineSyntaxError
from scratchd.pipeline.boxes import BoxReader
from scratchd.pipeline.diagnostics import ERROR, Collector, Diagnostic, condense
from scratchd.pipeline.limits import check_size
from scratchd.pipeline.plan import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_NO_RESPONSE_TIMEOUT,
    Pipeline,
    Plan,
    Step,
)
from scratchd.pipeline.stepparse import StepReader
from scratchd.pipeline.workflowparse import WorkflowReader
from scratchd.pipeline.yamlhints import likely_cause
from scratchd.pipeline.yamlnodes import Document, is_null, kind, plain_text, where

MAX_TIMEOUT_MINUTES = 60  # wercker caps both timeouts at an hour
_SETTINGS = frozenset({"box", "services", "command-timeout", "no-response-timeout", "source-dir"})
_IGNORED_SETTINGS = frozenset({"ignore-file"})
_NULL = ScalarNode("tag:yaml.org,2002:null", "")
_PIPELINE_KEYS = frozenset({"box", "services", "steps", "after-steps", "base-path", "docker"})


def load_plan(path: Path) -> Plan:
    """Read and parse a wercker.yml; raises PipelineError / PipelineSyntaxError."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_plan(decode(data, str(path)), str(path))


def decode(data: bytes, path: str) -> str:
    """UTF-8 (a BOM is allowed) or a PipelineSyntaxError naming the bad byte's line."""
    check_size(data, path)  # before anything else: parsing a huge file is the attack
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise PipelineSyntaxError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})", path=path, line=line, column=col
        ) from None


def parse_plan(
    text: str,
    path: str,
    *,
    requested: tuple[str, ...] = (),
    configured: tuple[str, ...] = (),
    branch: str | None = None,
) -> Plan:
    """Parse wercker.yml text; the first error raises PipelineSyntaxError.

    The selection arguments are :func:`scratchd.pipeline.selection.select`'s:
    a file with nothing to run for them is an error here as in lint.
    """
    plan, found = compile_plan(
        text, path, requested=requested, configured=configured, branch=branch
    )
    errors = [d for d in found if d.severity == ERROR]
    if errors or plan is None:
        first = errors[0]
        raise PipelineSyntaxError(first.message, path=path, line=first.line, column=first.col)
    return plan


def compile_plan(
    text: str,
    path: str,
    root: Path | None = None,
    *,
    requested: tuple[str, ...] = (),
    configured: tuple[str, ...] = (),
    branch: str | None = None,
    secret_names: frozenset[str] = frozenset(),
) -> tuple[Plan | None, list[Diagnostic]]:
    """The Plan (None if the file has errors) and what lint shows, in file order.

    ``root`` is the repository directory when known; it lets the checks see
    whether registry steps are vendored there. Warnings of pipelines the
    selection would not run are left out; each warning appears once and a
    repeated error once (:func:`~scratchd.pipeline.diagnostics.condense`).
    ``secret_names`` are the variables of a secrets file, when known (lint
    warns when one would go into an image config).
    """
    from scratchd.pipeline.selection import select

    out = Collector()
    doc = _compose(text, out)
    plan = None
    running: frozenset[str] | None = None
    if doc is not None:
        plan = _PlanReader(doc, out, root, secret_names).read(doc.root, path)
        if not out.errors:
            try:
                running = frozenset(p.name for p in select(plan, requested, configured, branch))
            except PipelineError as exc:
                out.error((0, 0), str(exc))
                running = frozenset()  # nothing runs: no pipeline's warnings matter
    found = condense(out.items, running)
    if plan is None or any(d.severity == ERROR for d in found):
        return None, found
    if plan is None:  # _compose already reported why there is no document
        return None, found
    warnings = tuple(d.format(path) for d in found)
    return dataclasses.replace(plan, warnings=warnings), found


def _compose(text: str, out: Collector) -> Document | None:
    try:
        doc = Document(text)
    except yaml.MarkedYAMLError as exc:
        out.error(*_yaml_error(exc, text))
        return None
    except yaml.YAMLError as exc:  # ReaderError: a character YAML does not allow
        position = getattr(exc, "position", 0) or 0
        line = text.count("\n", 0, position) + 1
        col = position - (text.rfind("\n", 0, position) + 1) + 1
        out.error((line, col), f"character not allowed in YAML: {getattr(exc, 'character', '')!r}")
        return None
    except RecursionError:
        out.error((1, 1), "YAML nested too deeply")
        return None
    if doc.root is None:
        out.error((1, 1), "the file is empty")
        return None
    return doc


def _yaml_error(exc: yaml.MarkedYAMLError, text: str) -> tuple[tuple[int, int], str]:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    source_line = text.splitlines()[line - 1] if 0 < line <= len(text.splitlines()) else ""
    indent = source_line[: len(source_line) - len(source_line.lstrip(" \t"))]
    if "\t" in indent:
        return (line, indent.index("\t") + 1), "tab used for indentation; YAML needs spaces"
    problem = " ".join(str(exc.problem or "invalid YAML").split())
    opened = exc.context_mark
    if exc.context == "while scanning a quoted scalar" and opened is not None:
        # PyYAML gives up at the end of the file; the cause is where the quote opened
        quote = text[opened.index] if opened.index < len(text) else '"'
        return (opened.line + 1, opened.column + 1), (
            f"the {quote} opened here is never closed, so YAML reads the rest of the file "
            f"as this value; end the value with {quote}"
        )
    cause = likely_cause(problem, text.splitlines(), line)
    if cause:
        return cause
    context = " ".join(str(exc.context).split()) if exc.context else ""
    if context and not context.startswith("while"):
        return (line, col), f"invalid YAML: {context}, {problem}"
    return (line, col), f"invalid YAML: {problem}" + (f" ({context})" if context else "")


def _did_you_mean(key: str, known: frozenset[str]) -> str:
    """ "unknown key 'stepz'; did you mean 'steps'?" when a known key is close, else ""."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.8)
    return f"unknown key '{key}'; did you mean '{close[0]}'?" if close else ""


class _PlanReader:
    def __init__(
        self, doc: Document, out: Collector, root: Path | None, secret_names: frozenset[str]
    ) -> None:
        self.doc, self.out = doc, out
        self.boxes = BoxReader(doc, out)
        self.steps = StepReader(doc, out, root, secret_names)

    def read(self, node: Node, path: str) -> Plan:
        if not isinstance(node, MappingNode):
            self.out.error(where(node), f"the top level must be a map, not {kind(node)}")
            return Plan(path=path)
        settings: dict[str, Any] = {}
        pipelines = []
        empty = ""  # the last pipeline key with no value: what a stray 'steps' belongs to
        for key, key_node, value in self.doc.entries(node, self.out):
            if key in _SETTINGS or key == "workflows":
                settings[key] = value
                if key in _PIPELINE_KEYS:
                    continue  # a box or services may belong to the empty pipeline too
            elif key in _PIPELINE_KEYS:
                self._stray_pipeline_key(key, key_node, empty)
            elif key in _IGNORED_SETTINGS:
                self.out.warn(where(key_node), f"'{key}' is ignored by scratchd")
            elif key.startswith("."):
                continue  # a hidden key: holds YAML anchors for the pipelines to reuse
            elif self._is_pipeline(key, key_node, value):
                self.out.pipeline = key
                pipelines.append(self._pipeline(key, key_node, value))
                self.out.pipeline = ""
                empty = key if is_null(value) else ""
                continue
            empty = ""
        if not any(p.name == "build" for p in pipelines) and "workflows" not in settings:
            self.out.warn(where(node), "no 'build' pipeline")
        return Plan(
            path=path,
            pipelines=tuple(pipelines),
            box=self.boxes.box(settings["box"]) if "box" in settings else None,
            services=self.boxes.services(settings.get("services"), top_level=True),
            command_timeout=self._timeout(settings, "command-timeout", DEFAULT_COMMAND_TIMEOUT),
            no_response_timeout=self._timeout(
                settings, "no-response-timeout", DEFAULT_NO_RESPONSE_TIMEOUT
            ),
            source_dir=self._source_dir(settings.get("source-dir")),
            workflows=WorkflowReader(self.doc, self.out).read(
                settings.get("workflows", _NULL), frozenset(p.name for p in pipelines)
            ),
        )

    def _timeout(self, settings: dict[str, Any], key: str, default: int) -> int:
        """Minutes in the file, seconds in the Plan; <= 0 means default, capped at 60."""
        node = settings.get(key)
        if node is None or is_null(node):
            return default
        text = plain_text(node) if isinstance(node, ScalarNode) else ""
        if not text.lstrip("-").isdigit() or not text.isascii():
            # yaml.v2 could not make an int of it; wercker ignored the error and the key
            self.out.warn(
                where(node),
                f"{key} must be a whole number of minutes; it is ignored and the default "
                "used, as wercker ignored it",
            )
            return default
        minutes = int(text)
        if minutes <= 0:
            self.out.warn(where(node), f"{key} {minutes} is not positive; the default is used")
            return default
        if minutes > MAX_TIMEOUT_MINUTES:
            self.out.warn(where(node), f"{key} is capped at {MAX_TIMEOUT_MINUTES} minutes")
        return min(minutes, MAX_TIMEOUT_MINUTES) * 60

    def _source_dir(self, node: Node | None) -> str:
        if node is None:
            return ""
        if not isinstance(node, ScalarNode):
            self.out.error(where(node), f"source-dir must be text, not {kind(node)}")
            return ""
        value = plain_text(node).strip()
        if value.startswith("/") or ".." in Path(value).parts:
            self.out.error(where(node), "source-dir must be a path inside the repository")
        return value

    def _pipeline(self, name: str, key_node: Node, node: Node) -> Pipeline:
        line = where(key_node)[0]
        if is_null(node):
            self.out.warn(where(key_node), f"pipeline '{name}' has no steps")
            return Pipeline(name=name, line=line)
        assert isinstance(node, MappingNode)  # _is_pipeline let only maps (and null) through
        fields: dict[str, Node] = {}
        targets = []
        for key, kn, value in self.doc.entries(node, self.out):
            if key in _PIPELINE_KEYS:
                fields[key] = value
            elif isinstance(value, SequenceNode):
                targets.append((key, self._target(name, key, kn, value)))
            else:
                self._not_a_target(name, key, kn, value)
        if "steps" not in fields and not targets:
            self.out.warn(where(key_node), f"pipeline '{name}' has no steps")
        return Pipeline(
            name=name,
            steps=self._steps(fields.get("steps"), "steps"),
            after_steps=self._steps(fields.get("after-steps"), "after-steps"),
            box=self.boxes.box(fields["box"]) if "box" in fields else None,
            services=self.boxes.services(fields.get("services")),
            base_path=self._base_path(fields.get("base-path")),
            docker=self._flag(fields.get("docker"), "docker"),
            targets=tuple(targets),
            line=line,
        )

    def _stray_pipeline_key(self, key: str, key_node: Node, empty: str) -> None:
        """A pipeline's own key (``steps``…) at the top level: mis-indented, most likely.

        wercker read it as a pipeline named ``steps`` and skipped it, so it is a
        warning; when the key above is a pipeline left empty, that is where it belongs.
        """
        where_to = (
            f"indent it under '{empty}:' above, which has no value"
            if empty
            else "indent it under the pipeline it is for"
        )
        self.out.warn(
            where(key_node),
            f"'{key}' belongs inside a pipeline, not at the top level: {where_to} "
            "(it is skipped, as wercker skipped it)",
        )

    def _is_pipeline(self, key: str, key_node: Node, value: Node) -> bool:
        """wercker read every other top-level key as a pipeline and skipped what
        did not read as one (a stray scalar, a list, an anchor holder): so do we,
        with a warning instead of rejecting the file."""
        if is_null(value):
            return True
        if isinstance(value, MappingNode):
            keys = {k.value for k, _ in value.value if isinstance(k, ScalarNode)}
            lists = any(isinstance(v, SequenceNode) for _, v in value.value)
            if keys & _PIPELINE_KEYS or lists or "<<" in keys:
                return True
            what = "a map without 'steps'"
        else:
            what = kind(value)
        typo = _did_you_mean(key, _SETTINGS)
        self.out.warn(
            where(key_node),
            f"{typo} (skipped: wercker skipped top-level keys that are not pipelines)"
            if typo
            else f"top-level key '{key}' is not a pipeline ({what}); "
            "it is skipped, as wercker skipped it",
        )
        return False

    def _target(
        self, pipeline: str, key: str, key_node: Node, node: SequenceNode
    ) -> tuple[Step, ...]:
        """A list of steps beside ``steps`` is a deploy target, whatever its name."""
        self.out.warn(
            where(key_node),
            f"deploy target '{key}' of pipeline '{pipeline}' runs only when selected: "
            f'deploy_target = "{key}" in the repository\'s config, or '
            f"scratchd build --deploy-target {key}",
        )
        return self._steps(node, key)

    def _not_a_target(self, pipeline: str, key: str, key_node: Node, node: Node) -> None:
        if isinstance(node, MappingNode) and any(
            isinstance(k, ScalarNode) and k.value in ("steps", "after-steps") for k, _ in node.value
        ):
            self.out.error(
                where(key_node),
                f"pipelines cannot be nested: '{key}' is inside '{pipeline}'; "
                "move it to the top level (no indentation)",
                group="nested",
            )
            return
        typo = _did_you_mean(key, _PIPELINE_KEYS)
        self.out.warn(
            where(key_node),
            f"in pipeline '{pipeline}': {typo} (ignored, as wercker ignored it)"
            if typo
            else f"in pipeline '{pipeline}': key '{key}' is ignored, as wercker ignored it "
            "(a deploy target is a list of steps)",
        )

    def _steps(self, node: Node | None, key: str) -> tuple[Step, ...]:
        if node is None or is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.out.error(where(node), f"{key} must be a list, not {kind(node)}")
            return ()
        read = (self.steps.read(item) for item in node.value)
        return tuple(step for step in read if step is not None)

    def _base_path(self, node: Node | None) -> str:
        if node is None:
            return ""
        if not isinstance(node, ScalarNode):
            self.out.error(where(node), f"base-path must be text, not {kind(node)}")
            return ""
        return plain_text(node).removesuffix("/")

    def _flag(self, node: Node | None, key: str) -> bool:
        if node is None or is_null(node):
            return False
        text = plain_text(node) if isinstance(node, ScalarNode) else ""
        if text not in ("true", "false", "True", "False", "yes", "no", "on", "off"):
            self.out.error(where(node), f"{key} must be true or false")
            return False
        value = text in ("true", "True", "yes", "on")
        if value and key == "docker":
            self.out.warn(
                where(node), "'docker: true' (direct access to a Docker daemon) is not provided"
            )
        return value
