"""The retired registry steps scratchd runs natively: shared plumbing and dispatch.

Most of them are a few lines of shell run where the pipeline's steps run
(inside the box on the docker executor, on the host otherwise), so they see
the same tools and files a vendored copy would. Options reach the shell as
environment variables, never pasted into the script text, so an option
value cannot inject commands. A tool the step needs that is missing fails
the step with a message naming the Debian package that has it.

A step's exports (``setup-go-workspace`` moves the source and sets GOPATH)
are written by the shell to a file in the step's report dir, which the
daemon reads back and hands to the steps after it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping

from scratchd.pipeline import registrysteps as rs
from scratchd.pipeline.registrysteps import BuiltinStep
from scratchd.runner.steps import StepContext, StepOutcome

__all__ = ["BuiltinStep", "export_line", "option_env", "run", "shell"]

EXPORTS = "scratchd-exports"


def run(ctx: StepContext) -> StepOutcome:
    """Run the built-in step by its compiled type."""
    from scratchd.runner.steps import github, go_workspace, http_notify, kubectl, shellsteps, ssh

    runners: dict[type, Callable[[StepContext], StepOutcome]] = {
        rs.NpmInstallStep: shellsteps.npm_install,
        rs.NpmTestStep: shellsteps.npm_test,
        rs.BundleInstallStep: shellsteps.bundle_install,
        rs.PipInstallStep: shellsteps.pip_install,
        rs.InstallPackagesStep: shellsteps.install_packages,
        rs.BashTemplateStep: shellsteps.bash_template,
        rs.SetupGoWorkspaceStep: go_workspace.run,
        rs.BasePathStep: go_workspace.base_path,
        rs.AddSshKeyStep: ssh.add_ssh_key,
        rs.AddToKnownHostsStep: ssh.add_to_known_hosts,
        rs.KubectlStep: kubectl.run,
        rs.SlackNotifierStep: http_notify.slack,
        rs.GithubCreateReleaseStep: github.create_release,
        rs.GithubUploadAssetStep: github.upload_asset,
    }
    return runners[type(ctx.step)](ctx)


def option_env(ctx: StepContext, prefix: str, keys: tuple[str, ...]) -> dict[str, str]:
    """``{PREFIX_KEY: expanded option}`` as wercker exported a step's options."""
    return {f"{prefix}_{k.replace('-', '_').upper()}": ctx.prop(k) for k in keys}


def shell(ctx: StepContext, body: str, env: Mapping[str, str] | None = None) -> StepOutcome:
    """Run ``body`` (bash, ``set -e``) after checking the step's tools; read its exports."""
    step = ctx.step
    assert isinstance(step, BuiltinStep)
    ctx.run_script("set -e\n" + _tool_check(step) + body, env=env or {})
    return StepOutcome(env=_read_exports(ctx))


def export_line(name: str) -> str:
    """Shell that hands ``$name`` on to the steps after this one."""
    return (
        f'printf "%s=%s\\n" {name} "${name}" >> "$WERCKER_REPORT_DIR/$WERCKER_STEP_ID/{EXPORTS}"\n'
    )


def _tool_check(step: BuiltinStep) -> str:
    lines = [
        'mkdir -p "$WERCKER_REPORT_DIR/$WERCKER_STEP_ID"\n',
    ]
    for tool, package in step.tools:
        message = (
            f"{step.id}: the command '{tool}' is not installed here; "
            f"install the Debian package '{package}' (apt-get install {package})"
        )
        lines.append(
            f"command -v {tool} >/dev/null 2>&1 || "
            f"{{ echo {shlex.quote(message)} >&2; exit 127; }}\n"
        )
    return "".join(lines)


def _read_exports(ctx: StepContext) -> dict[str, str]:
    path = ctx.job.dirs.report / ctx.step_id / EXPORTS
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    pairs = (line.partition("=") for line in text.splitlines() if "=" in line)
    return {name: value for name, _, value in pairs}
