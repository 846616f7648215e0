"""One step list item of a wercker.yml → a :class:`Step`.

wercker accepts three shapes for a step (``core/config.go``
RawStepConfig.UnmarshalYAML), and so do we::

    - npm-install                 a bare id
    - script:                     a one-key map: id → options
        code: make
    - script:                     the "flat" map: first key is the id,
      code: make                  the other keys are its options

``name``, ``cwd`` and ``checkpoint`` are taken out of the options; script
code gets ``set -e`` in front unless it starts with ``#!`` (normalizeCode).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode

from scratchd.pipeline import imagesecrets
from scratchd.pipeline import steps as known
from scratchd.pipeline.diagnostics import Collector
from scratchd.pipeline.plan import Step
from scratchd.pipeline.yamlnodes import DROPPED, Document, is_null, kind, wercker_text, where

Options = list[tuple[str, Node, str]]  # (key, key node, value as wercker's text)
At = tuple[int, int]  # line, column


class StepReader:
    """Turns step nodes into Steps, reporting problems to a Collector."""

    def __init__(
        self,
        doc: Document,
        out: Collector,
        root: Path | None = None,
        secret_names: frozenset[str] = frozenset(),
    ) -> None:
        # root: the repository's checkout, when known (lint), to look for vendored steps;
        # secret_names: the secrets file's variables, when known (lint --secrets-file)
        self.doc, self.out, self.root = doc, out, root
        self.secret_names = secret_names

    def read(self, node: Node) -> Step | None:
        if isinstance(node, ScalarNode) and not is_null(node):
            return self._build(node, node.value, [])
        if isinstance(node, MappingNode) and node.value:
            return self._from_map(node)
        self.out.error(where(node), f"a step must be a step id or a map, not {_shape(node)}")
        return None

    def _from_map(self, node: MappingNode) -> Step | None:
        entries = self.doc.entries(node, self.out)
        if not entries:
            return None
        step_id, id_node, value = entries[0]
        if len(entries) == 1:
            if not isinstance(value, MappingNode):
                if not is_null(value):
                    self.out.error(
                        where(value),
                        f"options of step '{step_id}' must be a map of 'option: value' "
                        "lines indented under the step id",
                        group="step-options",
                    )
                else:
                    self.out.error(
                        where(id_node),
                        f"step '{step_id}' has an empty option map: "
                        f"write '- {step_id}' or indent its options under it",
                    )
                return None
            return self._build(id_node, step_id, self._options(step_id, value))
        if step_id in known.COMMON_OPTIONS | {"code"}:
            self.out.error(
                where(id_node),
                f"'{step_id}' is a step option, but wercker reads the first key of a "
                "flat step as its id: put the step id (e.g. 'script:') first",
            )
            return None
        if not is_null(value):
            self.out.warn(
                where(value),
                f"step '{step_id}': this value is ignored because the options are "
                "written beside the id (flat form); indent them under the id instead",
            )
        return self._build(id_node, step_id, self._texts(step_id, entries[1:]))

    def _options(self, step_id: str, node: MappingNode) -> list[tuple[str, Node, str]]:
        return self._texts(step_id, self.doc.entries(node, self.out))

    def _texts(
        self, step_id: str, entries: Sequence[tuple[str, Node, Node]]
    ) -> list[tuple[str, Node, str]]:
        """Option values as text, the way wercker's ifaceToString made them."""
        texts = []
        for key, key_node, value in entries:
            if not isinstance(value, ScalarNode):
                self.out.warn(
                    where(value),
                    f"option '{key}' of step '{step_id}' is {kind(value)}; "
                    "wercker passed such values as an empty string",
                )
                texts.append((key, key_node, ""))
                continue
            text = wercker_text(value)
            if text is DROPPED:
                shown = "the value" if key in known.SECRET_OPTIONS else value.value
                self.out.warn(
                    where(value),
                    f"option '{key}' of step '{step_id}': {shown} is read as a number "
                    "with a fraction (or past 64 bits), which wercker passed as an empty "
                    "string; quote it",
                )
                text = ""
            texts.append((key, key_node, text))
        return texts

    def _build(self, id_node: Node, step_id: str, options: Options) -> Step | None:
        ref = known.parse_step_id(step_id)
        if ref is None:
            self.out.error(
                where(id_node),
                f"bad step id '{step_id}': expected 'name', 'owner/name@version' "
                "or 'name \"file://path\"'",
            )
            return None
        step_kind = known.classify(ref)
        options = _renamed(ref.identifier, options)
        props = {k: v for k, _, v in options}
        self._check(id_node, ref, step_kind, options)
        code = props.pop("code", "") if step_kind == known.SCRIPT else ""
        name, cwd = props.pop("name", ""), props.pop("cwd", "")
        props.pop("checkpoint", None)
        line, col = where(id_node)
        return Step(
            id=ref.identifier,
            name=known.display_name(ref, name),
            properties=tuple(props.items()),
            code=_normalize_code(code) if step_kind == known.SCRIPT else "",
            cwd=cwd,
            line=line,
            column=col,
            kind=step_kind,
            url=ref.url,
        )

    def _check(self, id_node: Node, ref: known.StepRef, step_kind: str, options: Options) -> None:
        at = where(id_node)
        if step_kind == known.INTERNAL:
            self._check_internal(at, ref.identifier, options)
        elif step_kind == known.SCRIPT:
            self._check_script(at, options)
        elif step_kind == known.RETIRED:
            why = known.RETIRED_INTERNAL.get(ref.identifier, "scratchd does not know it")
            self.out.warn(at, f"step '{ref.identifier}' will not run here: {why}")
        elif step_kind == known.LOCAL:
            self._check_local(at, ref)
        elif step_kind == known.REGISTRY:
            self._warn_registry(at, ref)
        elif step_kind == known.BUILTIN and not self._vendored(ref):
            self._check_builtin(known.builtin_name(ref), options)

    def _check_internal(self, at: At, step_id: str, options: Options) -> None:
        allowed = known.OPTIONS[step_id] | known.COMMON_OPTIONS
        ignored = known.IGNORED_OPTIONS.get(step_id, frozenset())
        given = set()
        for key, key_node, value in options:
            given.add(key)
            if key in ignored:
                self.out.warn(where(key_node), f"option '{key}' of {step_id} is ignored here")
            elif key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                self.out.warn(
                    where(key_node),
                    f"unknown option '{key}' of {step_id} is ignored, as wercker ignored it{hint}",
                )
            elif key in known.SECRET_OPTIONS and value and "$" not in value:
                self.out.warn(
                    where(key_node),
                    f"option '{key}' of {step_id} is written in the file; "
                    "pass it as $VARIABLE from a secrets file instead",
                )
        for key in known.REQUIRED_OPTIONS.get(step_id, ()):
            if key not in given:
                self.out.error(at, f"{step_id} needs the option '{key}'")
        self._warn_secrets_in_image(step_id, options)

    def _warn_secrets_in_image(self, step_id: str, options: Options) -> None:
        """Lint's half of :mod:`.imagesecrets`: the run refuses what this warns about."""
        if step_id not in imagesecrets.PUSH_STEPS:
            return
        nodes = {k: kn for k, kn, _ in options}

        def is_secret(name: str) -> bool:
            return name in self.secret_names or imagesecrets.looks_secret(name)

        values = [(k, v) for k, _, v in options]
        for option, name in imagesecrets.secret_references(values, is_secret):
            self.out.warn(where(nodes[option]), imagesecrets.refusal(step_id, option, name))

    def _check_script(self, at: At, options: Options) -> None:
        keys = {k: kn for k, kn, _ in options}
        if "code" not in keys:
            self.out.warn(at, "script step has no 'code'")
        for key, key_node in keys.items():
            if key not in known.OPTIONS["script"] | known.COMMON_OPTIONS:
                self.out.warn(
                    where(key_node),
                    f"unknown option '{key}' for script (only 'name', 'code' and 'cwd' are used)",
                )

    def _check_local(self, at: At, ref: known.StepRef) -> None:
        path = ref.url[len("file://") :]
        if path.startswith("/"):
            self.out.warn(
                at,
                f"step '{ref.identifier}' uses an absolute path that will not exist in the "
                "build's checkout; give a path inside the repository",
            )
        elif self.root is not None and not (self.root / path / "run.sh").is_file():
            self.out.warn(at, f"step '{ref.identifier}': {path}/run.sh does not exist")

    def _vendored(self, ref: known.StepRef) -> bool:
        return self.root is not None and (self.root / known.vendored_dir(ref) / "run.sh").is_file()

    def _check_builtin(self, name: str, options: list[tuple[str, Node, str]]) -> None:
        """Built-in registry steps ignore unknown options, as wercker's steps did."""
        allowed = known.BUILTIN_STEPS[name][0] | known.COMMON_OPTIONS
        for key, key_node, _ in options:
            if key not in allowed:
                close = difflib.get_close_matches(key, sorted(allowed), n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                self.out.warn(where(key_node), f"unknown option '{key}' of {name} is ignored{hint}")

    def _warn_registry(self, at: At, ref: known.StepRef) -> None:
        if self._vendored(ref):
            return  # vendored: the runner will find it
        source = f"the URL {ref.url}" if ref.url else "wercker's retired step registry"
        self.out.warn(
            at,
            f"step '{ref.identifier}' comes from {source}, which scratchd cannot fetch; "
            f"vendor it: copy the step's files (run.sh, step.yml) into "
            f"{known.vendored_dir(ref)}/",
        )


def _renamed(step_id: str, options: list[tuple[str, Node, str]]) -> list[tuple[str, Node, str]]:
    """Old option names as the option they mean (``buildargs`` → ``build-args``),
    unless the file also gives the new name, which then wins."""
    aliases = known.OPTION_ALIASES.get(step_id, {})
    given = {key for key, _, _ in options}
    return [
        (aliases[key], kn, v) if key in aliases and aliases[key] not in given else (key, kn, v)
        for key, kn, v in options
    ]


def _normalize_code(code: str) -> str:
    """wercker's normalizeCode: ``set -e`` first unless the code names its interpreter."""
    return code if code.startswith("#!") else f"set -e\n{code}"


def _shape(node: Node) -> str:
    if is_null(node):
        return "empty"
    if isinstance(node, MappingNode):
        return "an empty map"
    return kind(node)
