"""What scratchd knows about step ids and the options of its built-in steps.

A step id in a wercker.yml takes wercker's forms (``core/step.go`` NewStep)::

    script                          the inline shell step
    internal/docker-scratch-push    a step built into the runner
    wercker/golint@1.0.0            owner/name@version from the step registry
    my-step "file://steps/my-step"  a step directory given by path
    file://steps/my-step            the same, named after the directory

wercker's step registry is gone, so a registry step runs only if the
repository vendors it in ``.scratchd/steps/<name>/`` (with ``run.sh`` and an
optional ``step.yml``); the compiler looks there, the parser only
classifies and records. Internal steps that made sense only on wercker's
platform or in ``wercker dev`` are *retired*: they parse, with a warning, and
compile to a skipped step.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SCRIPT = "script"
BUILTIN = "builtin"  # a registry step scratchd runs natively (pipeline.registrysteps)
INTERNAL = "internal"
LOCAL = "local"
REGISTRY = "registry"
RETIRED = "retired"

VENDOR_DIR = ".scratchd/steps"

# Options every step takes; wercker removes them from the step's data.
COMMON_OPTIONS = frozenset({"name", "cwd", "checkpoint"})

_REGISTRY_AUTH = frozenset({"username", "password", "registry"})
_IMAGE_CONFIG = frozenset(
    {"cmd", "entrypoint", "ports", "env", "labels", "working-dir", "user", "volumes", "stopsignal"}
    | {"public-env", "public-labels"}  # see pipeline/imagesecrets.py
)
# Options wercker's push steps read that have no meaning here (its own
# registry, cloud-specific logins, commit metadata of the docker engine).
_WERCKER_ONLY_PUSH = frozenset(
    {
        "email",
        "auth-server",
        "author",
        "message",
        "disable-sync",
        "aws-access-key",
        "aws-secret-key",
        "aws-region",
        "aws-strict-auth",
        "aws-registry-id",
        "azure-client-id",
        "azure-client-secret",
        "azure-subscription-id",
        "azure-tenant-id",
        "azure-resource-group",
        "azure-registry-name",
        "azure-login-server",
    }
)

#: Options each built-in step acts on (besides COMMON_OPTIONS).
OPTIONS: dict[str, frozenset[str]] = {
    "script": frozenset({"code"}),
    "internal/docker-scratch-push": _REGISTRY_AUTH | _IMAGE_CONFIG | {"repository", "tag"},
    "internal/docker-push": _REGISTRY_AUTH | _IMAGE_CONFIG | {"repository", "tag", "image-name"},
    "internal/docker-build": frozenset(
        {
            "image-name",
            "dockerfile",
            "labels",
            "build-args",
            "q",
            "no-cache",
            "extra-hosts",
            "squash",
            "registry-auth-config",
            "context",
        }
    ),
}

#: Options wercker knew for a built-in step that scratchd accepts and ignores.
IGNORED_OPTIONS: dict[str, frozenset[str]] = {
    "internal/docker-scratch-push": _WERCKER_ONLY_PUSH | {"image-name", "force-tags"},
    # force-tags: docker <1.10 refused to move a tag without it; a registry
    # push always moves the tag, so there is nothing left to force.
    "internal/docker-push": _WERCKER_ONLY_PUSH | {"force-tags"},
    "internal/docker-build": frozenset({"disable-sync"}),
}

#: Option names older wercker releases read, and the name they mean now.
OPTION_ALIASES: dict[str, dict[str, str]] = {
    "internal/docker-build": {
        "tag": "image-name",
        "buildargs": "build-args",
        "extrahosts": "extra-hosts",
    },
}

#: Options a built-in step needs.
# internal/docker-scratch-push needs no repository here: without one, the
# daemon writes the image to its local OCI layout store (the default target
# when no registry is configured).
REQUIRED_OPTIONS: dict[str, tuple[str, ...]] = {
    "internal/docker-push": ("repository",),
    "internal/docker-build": ("image-name",),
}

#: Options whose values are credentials: masked in every output.
SECRET_OPTIONS = frozenset({"password", "token", "aws-secret-key", "azure-client-secret"})

_KUBECTL_FLAGS = frozenset(
    {
        "server", "username", "password", "token", "insecure-skip-tls-verify",
        "certificate-authority", "client-certificate", "client-key", "namespace",
        "all", "current-replicas", "deployment-label-key", "file", "grace-period", "image",
        "interactive", "output", "overwrite", "patch", "pod", "poll-interval", "replicas",
        "resource-version", "rollback", "selector", "stdin", "template", "timeout", "tty",
        "update-period",
    }
)  # fmt: skip
_GITHUB = frozenset({"token", "owner", "repo", "api-url"})

#: The retired registry steps built in: options (as their READMEs documented
#: them) and the commands each needs with the Debian package that has them.
BUILTIN_STEPS: dict[str, tuple[frozenset[str], tuple[tuple[str, str], ...]]] = {
    "npm-install": (
        frozenset({"options", "use-cache", "clear-cache-on-failed"}),
        (("npm", "npm"),),
    ),
    "npm-test": (frozenset(), (("npm", "npm"),)),
    "bundle-install": (
        frozenset({"path", "without", "jobs", "gemfile", "deployment", "frozen", "binstubs",
                   "clean", "retry"}),
        (("bundle", "ruby-bundler"),),
    ),
    "pip-install": (
        frozenset({"requirements_file", "packages_list", "extra_args", "cleanup_wheel_dir",
                   "auto_run_wheel"}),
        (("pip3", "python3-pip"),),
    ),
    "setup-go-workspace": (frozenset({"package-dir", "gopath"}), ()),
    "install-packages": (frozenset({"packages"}), (("apt-get", "apt"),)),
    "add-ssh-key": (frozenset({"keyname", "host"}), ()),
    "add-to-known_hosts": (
        frozenset({"hostname", "fingerprint", "type", "port", "local"}),
        (("ssh-keyscan", "openssh-client"),),
    ),
    "bash-template": (frozenset({"input", "output"}), ()),
    "kubectl": (
        _KUBECTL_FLAGS | {"command", "cmd", "raw-global-args", "raw-args", "debug"},
        (("kubectl", "kubernetes-client"),),
    ),
    "slack-notifier": (
        frozenset({"url", "channel", "username", "icon_url", "notify_on", "branch"}),
        (),
    ),
    "github-create-release": (
        _GITHUB | {"tag", "title", "body", "draft", "prerelease", "target-commitish", "export-id"},
        (),
    ),
    "github-upload-asset": (
        _GITHUB | {"file", "filename", "content-type", "release-id", "upload-url"},
        (),
    ),
}  # fmt: skip

#: Step-specific secret options (besides SECRET_OPTIONS): a Slack webhook URL is a credential.
BUILTIN_SECRETS: dict[str, frozenset[str]] = {"slack-notifier": frozenset({"url"})}


def builtin_name(ref: StepRef) -> str:
    """The built-in a registry step id names ("" if none): wercker's own steps only,
    with or without the ``wercker/`` owner and a version; other owners' forks differ."""
    return ref.name if ref.owner == "wercker" and ref.name in BUILTIN_STEPS else ""


#: wercker's display names of the built-in steps.
DISPLAY_NAMES = {
    "internal/docker-scratch-push": "docker scratch'n'push",
    "internal/docker-push": "docker push",
    "internal/docker-build": "docker build",
}

#: Internal steps of wercker that do not run here, and why.
RETIRED_INTERNAL = {
    "internal/watch": "it reloads code for 'wercker dev'",
    "internal/shell": "it opens an interactive shell for 'wercker dev'",
    "internal/store-container": "it stored containers on wercker's platform",
    "internal/publish-step": "it published to wercker's step registry",
    "internal/docker-run": "it started containers for wercker's workflows",
    "internal/docker-kill": "it stopped containers for wercker's workflows",
}

_WITH_URL = re.compile(r'^(\S+)\s+("(?:[^"\\]|\\.)*"|`[^`]*`)\s*$')


@dataclass(frozen=True)
class StepRef:
    """A step id split the way wercker splits it."""

    identifier: str  # the id without the quoted url
    owner: str  # "wercker" when none is given
    name: str
    version: str  # "*" when none is given
    url: str = ""


def parse_step_id(step_id: str) -> StepRef | None:
    """Split ``owner/name@version "url"``; None if the id is malformed."""
    step_id = step_id.strip()
    url = ""
    match = _WITH_URL.match(step_id)
    if match:
        step_id, url = match.group(1), _unquote(match.group(2))
    if not step_id or any(c.isspace() for c in step_id):
        return None
    if step_id.startswith("file://") and not url:  # shorthand: the path names the step
        name = step_id[len("file://") :].rstrip("/").rsplit("/", 1)[-1]
        return StepRef(step_id, "wercker", name, "*", step_id) if name else None
    owner, name = step_id.split("/", 1) if "/" in step_id else ("wercker", step_id)
    name, at, version = name.partition("@")
    if not owner or not name or (at and not version):
        return None
    return StepRef(step_id, owner, name, version or "*", url)


def _unquote(quoted: str) -> str:
    if quoted.startswith("`"):
        return quoted[1:-1]
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def classify(ref: StepRef) -> str:
    """The kind of a step (one of the module's kind constants)."""
    if ref.name == "script":
        return SCRIPT  # wercker: any id whose name part is "script"
    if ref.identifier in OPTIONS:
        return INTERNAL
    if ref.identifier.startswith("internal/"):
        return RETIRED
    if ref.url:
        return LOCAL if ref.url.startswith("file://") else REGISTRY
    return BUILTIN if builtin_name(ref) else REGISTRY


def vendored_dir(ref: StepRef) -> str:
    """Where a repository vendors a registry step (relative to its root)."""
    return f"{VENDOR_DIR}/{ref.name}"


def display_name(ref: StepRef, given: str) -> str:
    """wercker's display name: the ``name`` option, else a default."""
    return given or DISPLAY_NAMES.get(ref.identifier, ref.name)


def property_env(step_name: str, properties: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    """``WERCKER_<STEP>_<PROP>`` variables for a local step, as wercker exports them.

    ``step_name`` is the name part of the id (``golint`` for
    ``wercker/golint@1.0.0``); dashes become underscores, all upper case;
    ``code`` and ``name`` are not exported.
    """
    out = []
    for key, value in properties:
        if key in ("code", "name"):
            continue
        var = f"WERCKER_{step_name}_{key}".replace("-", "_").upper()
        out.append((var, value))
    return out
