"""``box`` and ``services`` entries → :class:`Box`.

A box is a string (``golang:1.22``) or a map (wercker's BoxConfig:
``id``, ``name``, ``tag``, ``cmd``, ``env``, ``ports``, ``entrypoint``,
``url``, ``volumes`` and the registry login ``username``/``password``/
``registry``). Like wercker's Go YAML library, scalar fields take the text as
written (``tag: 1.10`` stays ``1.10``). A service's host name is its ``name``,
else the last path part of its repository (``quay.io/org/redis:6`` → ``redis``),
as wercker's GetServiceAlias does; env keys are upper-cased as wercker's
dockerEnv does.
"""

from __future__ import annotations

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from scratchd.pipeline.diagnostics import Collector
from scratchd.pipeline.plan import Box
from scratchd.pipeline.yamlnodes import Document, is_null, kind, plain_text, where

_TEXT_FIELDS = ("id", "name", "tag", "cmd", "entrypoint", "url", "volumes")
_LOGIN_FIELDS = ("username", "password", "registry")
# wercker's cloud registry logins: accepted, not used here.
_CLOUD_LOGIN = frozenset(
    {
        "aws-registry-id",
        "aws-region",
        "aws-access-key",
        "aws-secret-key",
        "aws-strict-auth",
        "azure-login-server",
        "azure-registry-name",
        "azure-client-id",
        "azure-client-secret",
        "azure-subscription-id",
        "azure-tenant-id",
        "azure-resource-group",
    }
)


class BoxReader:
    """Reads box and service nodes, reporting problems to a Collector."""

    def __init__(self, doc: Document, out: Collector) -> None:
        self.doc, self.out = doc, out

    def box(self, node: Node, service: bool = False) -> Box | None:
        what = "a service" if service else "box"
        if is_null(node) and not service:
            return None  # "box:" with nothing: as if there were no box key
        if isinstance(node, ScalarNode) and plain_text(node).strip():
            return self._finish(node, {"id": plain_text(node).strip()}, (), (), service)
        if not isinstance(node, MappingNode):
            self.out.error(where(node), f"{what} must be a string or a map, not {_shape(node)}")
            return None
        fields: dict[str, str] = {}
        env: tuple[tuple[str, str], ...] = ()
        ports: tuple[str, ...] = ()
        for key, key_node, value in self.doc.entries(node, self.out):
            if key == "env":
                env = self._env(value)
            elif key == "ports":
                ports = self._ports(value)
            elif key in _TEXT_FIELDS or key in _LOGIN_FIELDS:
                fields[key] = self._text(key, value)
            elif key in _CLOUD_LOGIN:
                self.out.warn(where(key_node), f"box option '{key}' is ignored here")
            else:
                self.out.warn(where(key_node), f"unknown box option '{key}' (ignored)")
        if not fields.get("id", "").strip():
            self.out.error(where(node), f"{what} map needs an 'id' (the image name)")
            return None
        return self._finish(node, fields, env, ports, service)

    def services(self, node: Node | None, top_level: bool = False) -> tuple[Box, ...]:
        """The service boxes of a ``services`` list.

        At the top level anything but a list was ignored by wercker (yaml.v2's type
        error, which wercker's config reader let pass: wercker's own todo-service demo
        has ``services: redis``), so it is a warning there; in a pipeline it dropped
        the whole pipeline, so it stays an error.
        """
        if node is None or is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            if top_level:
                self.out.warn(
                    where(node),
                    f"services must be a list, not {kind(node)}; it is ignored, as wercker "
                    "ignored it (write each service on its own '- ' line to have it)",
                )
            else:
                self.out.error(where(node), f"services must be a list, not {kind(node)}")
            return ()
        boxes = [b for b in (self.box(item, service=True) for item in node.value) if b]
        seen: dict[str, Box] = {}
        for box in boxes:
            if box.name in seen:
                self.out.error(
                    (box.line, 1),
                    f"two services are named '{box.name}' (line {seen[box.name].line}); "
                    "give one a 'name'",
                )
            seen.setdefault(box.name, box)
        return tuple(boxes)

    def _finish(
        self,
        node: Node,
        fields: dict[str, str],
        env: tuple[tuple[str, str], ...],
        ports: tuple[str, ...],
        service: bool,
    ) -> Box:
        box_id = fields["id"].strip()
        if "@" in box_id and "@sha256:" not in box_id:
            self.out.warn(
                where(node),
                f"'{box_id}' uses the '@version' form of wercker's old box registry, "
                "which no Docker registry serves; name an image as name:tag",
            )
        if fields.get("url"):
            self.out.warn(where(node), "boxes built from a 'url' are not supported; it is ignored")
        if fields.get("password") and "$" not in fields["password"]:
            self.out.warn(
                where(node),
                "the box password is written in the file; "
                "pass it as $VARIABLE from a secrets file instead",
            )
        name = fields.get("name", "") or (_short_name(box_id) if service else "")
        return Box(
            id=box_id,
            tag=fields.get("tag", ""),
            cmd=fields.get("cmd", ""),
            entrypoint=fields.get("entrypoint", ""),
            env=env,
            username=fields.get("username", ""),
            password=fields.get("password", ""),
            registry=fields.get("registry", ""),
            name=name,
            ports=ports,
            volumes=fields.get("volumes", ""),
            url=fields.get("url", ""),
            line=where(node)[0],
        )

    def _text(self, key: str, node: Node) -> str:
        if isinstance(node, ScalarNode):
            return plain_text(node)
        self.out.error(where(node), f"box option '{key}' must be text, not {kind(node)}")
        return ""

    def _env(self, node: Node) -> tuple[tuple[str, str], ...]:
        if is_null(node):
            return ()
        if not isinstance(node, MappingNode):
            self.out.error(where(node), f"box env must be a map of NAME: value, not {kind(node)}")
            return ()
        return tuple(
            (key.upper(), self._text(f"env {key}", value))
            for key, _, value in self.doc.entries(node, self.out)
        )

    def _ports(self, node: Node) -> tuple[str, ...]:
        if is_null(node):
            return ()
        if not isinstance(node, SequenceNode):
            self.out.error(where(node), f"box ports must be a list, not {kind(node)}")
            return ()
        return tuple(self._text("ports", item) for item in node.value)


def _short_name(box_id: str) -> str:
    """wercker's service alias: the repository's last path part, without tag or digest."""
    repository = box_id.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _shape(node: Node) -> str:
    if isinstance(node, ScalarNode):
        return "empty"  # the only text that gets here is blank
    return kind(node)
