"""``kubectl``: run kubectl with the connection options of wercker/step-kubectl.

The README's options map to kubectl flags as ``--option=value``: the
connection ones (``server``, ``token``, ``username``, ``password``,
``insecure-skip-tls-verify``, certificates, ``namespace``) before the
command, the rest after; ``raw-global-args`` and ``raw-args`` are added as
written. ``command`` (or the older ``cmd``) is the kubectl command itself.
The flags reach kubectl as separate arguments built from environment
variables, so option values are never run as shell.
"""

from __future__ import annotations

from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.builtin import shell

GLOBAL = (
    "server", "token", "username", "password", "insecure-skip-tls-verify",
    "certificate-authority", "client-certificate", "client-key", "namespace",
)  # fmt: skip
LOCAL = (
    "all", "current-replicas", "deployment-label-key", "file", "grace-period", "image",
    "interactive", "output", "overwrite", "patch", "pod", "poll-interval", "replicas",
    "resource-version", "rollback", "selector", "stdin", "template", "timeout", "tty",
    "update-period",
)  # fmt: skip


def run(ctx: StepContext) -> StepOutcome:
    env: dict[str, str] = {}
    lines = ["set --\n"]
    for i, key in enumerate((*GLOBAL, "@command", *LOCAL)):
        if key == "@command":
            env["KUBECTL_RAW_GLOBAL"] = ctx.prop("raw-global-args")
            env["KUBECTL_COMMAND"] = ctx.prop("command") or ctx.prop("cmd")
            lines.append('set -- "$@" $KUBECTL_RAW_GLOBAL $KUBECTL_COMMAND\n')
            continue
        value = ctx.prop(key)
        if value:
            env[f"KUBECTL_FLAG_{i}"] = f"--{key}={value}"
            lines.append(f'set -- "$@" "$KUBECTL_FLAG_{i}"\n')
    env["KUBECTL_RAW_ARGS"] = ctx.prop("raw-args")
    lines.append('set -- "$@" $KUBECTL_RAW_ARGS\n')
    if ctx.prop("debug") == "true":
        lines.append('echo "kubectl $*"\n')  # the masker hides the password and token
    lines.append('kubectl "$@"\n')
    return shell(ctx, "".join(lines), env)
