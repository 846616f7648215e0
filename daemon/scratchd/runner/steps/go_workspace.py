"""``setup-go-workspace``: put the source where GOPATH-era Go expects it.

As wercker/step-setup-go-workspace did: the source is copied to
``$GOPATH/src/$package_dir`` (``package-dir`` defaults to
``$WERCKER_GIT_DOMAIN/$WERCKER_GIT_OWNER/$WERCKER_GIT_REPOSITORY``), and the
steps after it work there: ``WERCKER_SOURCE_DIR`` points at the copy,
``GOPATH`` is set and ``$GOPATH/bin`` is on ``PATH``. ``gopath`` defaults to
the box's ``$GOPATH`` (``/go`` in the golang images), else a directory of
this pipeline run, so the host executor never writes outside its dirs.
"""

from __future__ import annotations

from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.builtin import export_line, option_env, shell

SETUP = """\
GOPATH="${WERCKER_SETUP_GO_WORKSPACE_GOPATH:-${GOPATH:-$WERCKER_PIPELINE_DIR/go}}"
package="${WERCKER_SETUP_GO_WORKSPACE_PACKAGE_DIR:-$WERCKER_GIT_DOMAIN/$WERCKER_GIT_OWNER/$WERCKER_GIT_REPOSITORY}"
target="$GOPATH/src/$package"
mkdir -p "$target" "$GOPATH/bin"
cp -a "$WERCKER_SOURCE_DIR/." "$target/"
echo "go workspace: $target (GOPATH=$GOPATH)"
WERCKER_SOURCE_DIR="$target"
PATH="$GOPATH/bin:$PATH"
"""


BASE_PATH = """\
target="$SCRATCHD_BASE_PATH"
mkdir -p "$target"
cp -a "$WERCKER_SOURCE_DIR/." "$target/"
echo "base-path: the source is at $target"
WERCKER_SOURCE_DIR="$target"
"""


def base_path(ctx: StepContext) -> StepOutcome:
    """wercker's pipeline ``base-path``: the same move, to the path the file gives."""
    env = {"SCRATCHD_BASE_PATH": ctx.prop("path")}
    return shell(ctx, BASE_PATH + export_line("WERCKER_SOURCE_DIR"), env)


def run(ctx: StepContext) -> StepOutcome:
    env = option_env(ctx, "WERCKER_SETUP_GO_WORKSPACE", ("package-dir", "gopath"))
    exports = "".join(export_line(n) for n in ("GOPATH", "WERCKER_SOURCE_DIR", "PATH"))
    return shell(ctx, SETUP + exports, env)
