"""YAML text → PyYAML nodes with positions, and wercker's reading of scalars.

The parser works on *composed nodes* rather than constructed Python objects:
nodes keep their start marks, so every message can name a line and column,
and duplicate keys (which PyYAML's constructor silently lets win) can be
reported: as a warning, because wercker's non-strict yaml.v2 Unmarshal let
the later one win too, and real files relied on it. Anchors, aliases and
``<<`` merge keys work as in any YAML loader.

Scalars are read the way wercker's Go YAML library (yaml.v2, YAML 1.1) reads
them, not the way PyYAML does, because that decides what a step sees:
``yes``/``on``/``y`` are booleans and become ``"true"``; ``0x1F`` and ``010``
are integers and become ``"31"`` and ``"8"``; numbers with a fraction and
integers past int64 became an *empty string* in wercker (``ifaceToString``),
which the parser reports as a warning. The tests check this reading against
Debian's build of yaml.v2 itself.
"""

from __future__ import annotations

import math
import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scratchd.pipeline.diagnostics import Collector

MERGE_TAG = "tag:yaml.org,2002:merge"
STR_TAG = "tag:yaml.org,2002:str"

_TRUE = frozenset({"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})
_FALSE = frozenset({"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})
_NULL = frozenset({"", "~", "null", "Null", "NULL"})
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)")
_GO_INT = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO][0-7]+|0[0-7]*|[1-9][0-9]*)")
_BAD_UNDERSCORE = re.compile(r"(?<![0-9])_|_(?![0-9])")  # Go: "_" only between digits
_SIGNED_BITS = re.compile(r"[-+]?[01]+")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")

#: Returned by :func:`wercker_text` for values wercker turned into "".
DROPPED = None


class Document:
    """A composed YAML document whose maps are read with ``<<`` merges applied."""

    def __init__(self, text: str) -> None:
        loader = yaml.SafeLoader(text)
        try:
            self.root: Node | None = loader.get_single_node()
        finally:
            loader.dispose()
        # Merged keys of each map, computed once: a chain of maps each merging
        # the previous one several times stays linear instead of exploding.
        self._merged: dict[int, dict[str, tuple[Node, Node]]] = {}

    def entries(self, node: MappingNode, out: Collector) -> list[tuple[str, Node, Node]]:
        """(key text, key node, value node) in order; duplicates and bad keys reported.

        A key given twice in the same map is a warning and the later one wins,
        as in wercker (yaml.v2 reports duplicates only in strict mode, which
        wercker did not use; Oracle's weblogic-kubernetes-operator file repeats
        ``command-timeout`` and ran). Keys brought in by ``<<`` merges are
        overridden by the map's own keys, as YAML specifies.
        """
        seen: dict[str, Node] = {}
        for key, _ in node.value:
            if not isinstance(key, ScalarNode):
                out.error(where(key), "a key must be plain text, not a list or a map")
            elif key.tag != MERGE_TAG:
                if key.value in seen:
                    first = seen[key.value].start_mark.line + 1
                    out.warn(
                        where(key),
                        f"duplicate key '{key.value}' (first given on line {first}): "
                        "the later one is used, as wercker used it",
                    )
                seen.setdefault(key.value, key)
        try:
            pairs = self._pairs(node, set())
        except _MergeError as exc:
            out.error(where(exc.node), f"bad '<<' merge: {exc}")
            return []
        except RecursionError:
            out.error(where(node), "bad '<<' merge: merges nested too deeply")
            return []
        return [(text, key, value) for text, (key, value) in pairs.items()]

    def _pairs(self, node: MappingNode, active: set[int]) -> dict[str, tuple[Node, Node]]:
        """The map's own keys over its merged keys (earlier merge sources win)."""
        if id(node) in self._merged:
            return self._merged[id(node)]
        if id(node) in active:
            raise _MergeError(node, "a map merges itself")
        active.add(id(node))
        merged: dict[str, tuple[Node, Node]] = {}
        own: dict[str, tuple[Node, Node]] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.tag == MERGE_TAG:
                for source in _merge_sources(value):
                    for text, pair in self._pairs(source, active).items():
                        merged.setdefault(text, pair)
            elif isinstance(key, ScalarNode):
                own.pop(key.value, None)  # the later one wins, in its own place
                own[key.value] = (key, value)
        active.discard(id(node))
        result = {text: pair for text, pair in merged.items() if text not in own}
        result.update(own)
        self._merged[id(node)] = result
        return result


class _MergeError(Exception):
    def __init__(self, node: Node, message: str) -> None:
        self.node = node
        super().__init__(message)


def _merge_sources(value: Node) -> list[MappingNode]:
    if isinstance(value, MappingNode):
        return [value]
    if isinstance(value, SequenceNode) and all(isinstance(v, MappingNode) for v in value.value):
        return list(value.value)
    raise _MergeError(value, f"expected a map or a list of maps, not {kind(value)}")


def where(node: Node) -> tuple[int, int]:
    """1-based (line, column) of a node's start."""
    return node.start_mark.line + 1, node.start_mark.column + 1


def kind(node: Node) -> str:
    """A word for the node's shape, for messages ("a list", "a map", "text")."""
    if isinstance(node, MappingNode):
        return "a map"
    if isinstance(node, SequenceNode):
        return "a list"
    return "text"


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.style is None and node.value in _NULL


def plain_text(node: ScalarNode) -> str:
    """A scalar as a Go string field reads it: its text, or "" for null."""
    return "" if is_null(node) else node.value


def wercker_text(node: ScalarNode) -> str | None:
    """A step option's value the way wercker's ``ifaceToString`` made it.

    Returns :data:`DROPPED` (None) for values wercker turned into "" without
    saying so (numbers with a fraction, huge integers), so the caller can warn.
    """
    text: str = node.value  # PyYAML is untyped; a scalar's value is its source text
    if node.style is not None or (node.tag == STR_TAG and _explicit(node)):
        return text  # quoted, block or !!str: always text
    if text in _NULL:
        return ""
    if text in _TRUE:
        return "true"
    if text in _FALSE:
        return "false"
    if text[:1] and text[0] in "+-.0123456789":
        return _number(text)
    return text


def _number(text: str) -> str | None:
    if _SPECIAL_FLOAT.fullmatch(text):
        return DROPPED
    if text.startswith("."):  # yaml.v2 tries only Go's ParseFloat here, on the raw text
        digits = text.replace("_", "")
        is_float = _DOT_FLOAT.fullmatch(digits) and not _BAD_UNDERSCORE.search(text)
        return DROPPED if is_float and math.isfinite(float(digits)) else text
    plain = text.replace("_", "")
    value = _go_int(plain)
    if value is not None:
        # yaml.v2 makes an int64 of it, or a uint64 past that, which ifaceToString drops
        return str(value) if -(2**63) <= value < 2**63 else DROPPED
    if _YAML_FLOAT.fullmatch(plain) and math.isfinite(float(plain)):
        return DROPPED  # a float64; one that overflows fails to parse and stays text
    return _binary(plain, text)


def _binary(plain: str, text: str) -> str | None:
    """yaml.v2's last try: ``0b…`` / ``-0b…`` read by ParseInt(…, 2) (which takes a sign)."""
    if plain.startswith("0b"):
        body = plain[2:]
    elif plain.startswith("-0b"):
        body = "-" + plain[3:]
    else:
        return text
    if not _SIGNED_BITS.fullmatch(body):
        return text
    value = int(body, 2)
    if -(2**63) <= value < 2**63:
        return str(value)
    return DROPPED if plain.startswith("0b") and value < 2**64 else text  # uint64


def _go_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(s, 0, 64)``, falling back to ParseUint like yaml.v2."""
    match = _GO_INT.fullmatch(text)
    if not match:
        return None
    sign, body = match.groups()
    prefix = body[:2].lower()
    bases = {"0x": 16, "0b": 2, "0o": 8}
    if prefix in bases:
        value = int(body[2:], bases[prefix])
    elif len(body) > 1 and body[0] == "0":
        value = int(body[1:], 8)
    else:
        value = int(body)
    value = -value if sign == "-" else value
    if -(2**63) <= value < 2**63 or (not sign and value < 2**64):
        return value
    return None  # out of range for Go: not an integer at all


def _explicit(node: ScalarNode) -> bool:
    """Whether a plain scalar's tag was written out (``!!str 1.5``)."""
    tag: str = node.tag  # PyYAML is untyped: name the types it returns
    implicit: str = _RESOLVER.resolve(ScalarNode, node.value, (True, False))
    return tag != implicit


_RESOLVER = yaml.resolver.Resolver()
