"""Registry steps that are a few lines of shell: npm, bundler, pip, apt, templates.

Each follows its original README (wercker/step-npm-install, step-npm-test,
step-bundle-install, step-pip-install, step-install-packages,
step-bash-template): same option names, same cache directories under
``$WERCKER_CACHE_DIR``, same retries.
"""

from __future__ import annotations

from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.builtin import option_env, shell

NPM_INSTALL = """\
cache="$WERCKER_CACHE_DIR/wercker/npm"
if [ "$WERCKER_NPM_INSTALL_USE_CACHE" != "false" ]; then
    mkdir -p "$cache"
    export npm_config_cache="$cache"
fi
for attempt in 1 2 3; do
    # $OPTIONS is split into words on purpose: "--production --no-optional"
    if npm install $WERCKER_NPM_INSTALL_OPTIONS; then exit 0; fi
    echo "npm install failed (attempt $attempt of 3)" >&2
    if [ "$WERCKER_NPM_INSTALL_CLEAR_CACHE_ON_FAILED" != "false" ]; then
        rm -rf "$cache" && mkdir -p "$cache"
    fi
done
exit 1
"""


def npm_install(ctx: StepContext) -> StepOutcome:
    keys = ("options", "use-cache", "clear-cache-on-failed")
    return shell(ctx, NPM_INSTALL, option_env(ctx, "WERCKER_NPM_INSTALL", keys))


def npm_test(ctx: StepContext) -> StepOutcome:
    return shell(ctx, "npm test\n")


BUNDLE_INSTALL = """\
set --
path="${WERCKER_BUNDLE_INSTALL_PATH:-$WERCKER_CACHE_DIR/bundle-install}"
set -- "$@" --path "$path" --retry "${WERCKER_BUNDLE_INSTALL_RETRY:-3}"
[ -n "$WERCKER_BUNDLE_INSTALL_WITHOUT" ] && set -- "$@" --without "$WERCKER_BUNDLE_INSTALL_WITHOUT"
[ -n "$WERCKER_BUNDLE_INSTALL_JOBS" ] && set -- "$@" --jobs "$WERCKER_BUNDLE_INSTALL_JOBS"
[ -n "$WERCKER_BUNDLE_INSTALL_GEMFILE" ] && set -- "$@" --gemfile "$WERCKER_BUNDLE_INSTALL_GEMFILE"
[ -n "$WERCKER_BUNDLE_INSTALL_BINSTUBS" ] && \
    set -- "$@" --binstubs "$WERCKER_BUNDLE_INSTALL_BINSTUBS"
[ "$WERCKER_BUNDLE_INSTALL_DEPLOYMENT" = "true" ] && set -- "$@" --deployment
[ "$WERCKER_BUNDLE_INSTALL_FROZEN" = "true" ] && set -- "$@" --frozen
[ "$WERCKER_BUNDLE_INSTALL_CLEAN" = "true" ] && set -- "$@" --clean
echo "bundle install $*"
bundle install "$@"
"""


def bundle_install(ctx: StepContext) -> StepOutcome:
    keys = ("path", "retry", "without", "jobs", "gemfile", "binstubs", "deployment", "frozen")
    return shell(ctx, BUNDLE_INSTALL, option_env(ctx, "WERCKER_BUNDLE_INSTALL", (*keys, "clean")))


PIP_INSTALL = """\
pip=pip3
command -v pip >/dev/null 2>&1 && pip=pip
export PIP_CACHE_DIR="$WERCKER_CACHE_DIR/pip"
requirements="${WERCKER_PIP_INSTALL_REQUIREMENTS_FILE:-requirements.txt}"
if [ -f "$requirements" ]; then
    $pip install $WERCKER_PIP_INSTALL_EXTRA_ARGS -r "$requirements"
elif [ -n "$WERCKER_PIP_INSTALL_REQUIREMENTS_FILE" ]; then
    echo "pip-install: $requirements does not exist" >&2
    exit 1
fi
if [ -n "$WERCKER_PIP_INSTALL_PACKAGES_LIST" ]; then
    $pip install $WERCKER_PIP_INSTALL_EXTRA_ARGS $WERCKER_PIP_INSTALL_PACKAGES_LIST
fi
"""


def pip_install(ctx: StepContext) -> StepOutcome:
    keys = ("requirements_file", "packages_list", "extra_args")
    return shell(ctx, PIP_INSTALL, option_env(ctx, "WERCKER_PIP_INSTALL", keys))


INSTALL_PACKAGES = """\
sudo=""
[ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1 && sudo=sudo
# Debian's images ship without package lists (only an empty partial/ dir
# remains), so look for an index itself, not for any entry.
if ! ls /var/lib/apt/lists 2>/dev/null | grep -q '_Packages'; then
    $sudo apt-get update -qq
fi
if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \\
        $WERCKER_INSTALL_PACKAGES_PACKAGES; then
    echo "install-packages: apt-get could not install: $WERCKER_INSTALL_PACKAGES_PACKAGES" \\
        "(do the box's apt sources, /etc/apt/sources.list*, reach a mirror that has them?)" >&2
    exit 1
fi
"""


def install_packages(ctx: StepContext) -> StepOutcome:
    return shell(ctx, INSTALL_PACKAGES, option_env(ctx, "WERCKER_INSTALL_PACKAGES", ("packages",)))


BASH_TEMPLATE = """\
render() {  # expand $VARS in "$1" into "$2" the way bash expands a here-document
    eval "cat <<__SCRATCHD_TEMPLATE_EOF__
$(cat "$1")
__SCRATCHD_TEMPLATE_EOF__" > "$2"
    echo "rendered $2"
}
if [ -n "$WERCKER_BASH_TEMPLATE_INPUT" ]; then
    render "$WERCKER_BASH_TEMPLATE_INPUT" \\
        "${WERCKER_BASH_TEMPLATE_OUTPUT:-${WERCKER_BASH_TEMPLATE_INPUT%.template}}"
else
    find . -name '*.template' -type f | while read -r file; do
        render "$file" "${file%.template}"
    done
fi
"""


def bash_template(ctx: StepContext) -> StepOutcome:
    env = option_env(ctx, "WERCKER_BASH_TEMPLATE", ("input", "output"))
    return shell(ctx, BASH_TEMPLATE, env)
