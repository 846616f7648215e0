"""``github-create-release`` and ``github-upload-asset``, as wercker's steps of those names.

Options as their READMEs: ``token`` (a secret), ``tag``, ``title``, ``body``,
``draft``, ``prerelease``, ``target-commitish``; ``owner``/``repo`` default
to the commit's. The release id is exported as
``WERCKER_GITHUB_CREATE_RELEASE_ID`` (or ``export-id``) for the steps after,
and ``github-upload-asset`` uploads ``file`` to it (``release-id``,
``filename``, ``content-type``). ``api-url``/``upload-url`` (or
``GITHUB_API_URL``/``GITHUB_UPLOAD_URL`` in the environment) point at a
GitHub Enterprise server; the defaults are github.com's.
"""

from __future__ import annotations

import mimetypes
import posixpath
import urllib.parse
from pathlib import Path

from scratchd.errors import StepFailed
from scratchd.runner.environment import DIR_VARS
from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.webcall import call, post_json

API = "https://api.github.com"
UPLOADS = "https://uploads.github.com"
RELEASE_ID = "WERCKER_GITHUB_CREATE_RELEASE_ID"


def create_release(ctx: StepContext) -> StepOutcome:
    tag = _required(ctx, "tag")
    release = {
        "tag_name": tag,
        "name": ctx.prop("title") or tag,
        "body": ctx.prop("body"),
        "draft": ctx.prop("draft") == "true",
        "prerelease": ctx.prop("prerelease") == "true",
    }
    if ctx.prop("target-commitish"):
        release["target_commitish"] = ctx.prop("target-commitish")
    url = f"{_base(ctx, 'api-url', 'GITHUB_API_URL', API)}/repos/{_repo(ctx)}/releases"
    answer = post_json(ctx.step.name, url, release, _auth(ctx))
    release_id = str(answer.get("id", "")) if isinstance(answer, dict) else ""
    if not release_id:
        raise StepFailed(
            f"{ctx.step.name}: GitHub answered without a release id", step=ctx.step.name
        )
    ctx.log(f"created release {tag} (id {release_id})")
    return StepOutcome(env={ctx.prop("export-id") or RELEASE_ID: release_id})


def upload_asset(ctx: StepContext) -> StepOutcome:
    release_id = ctx.prop("release-id") or ctx.env.get(RELEASE_ID, "")
    if not release_id:
        raise StepFailed(
            f"{ctx.step.name}: no release id: give 'release-id' or run github-create-release first",
            step=ctx.step.name,
        )
    path = _host_path(ctx, _required(ctx, "file"))
    name = ctx.prop("filename") or path.name
    kind = ctx.prop("content-type") or mimetypes.guess_type(name)[0] or "application/octet-stream"
    base = _base(ctx, "upload-url", "GITHUB_UPLOAD_URL", UPLOADS)
    query = urllib.parse.urlencode({"name": name})
    url = f"{base}/repos/{_repo(ctx)}/releases/{urllib.parse.quote(release_id)}/assets?{query}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StepFailed(f"{ctx.step.name}: cannot read {path.name}: {exc.strerror}") from None
    call(ctx.step.name, "POST", url, data, {**_auth(ctx), "Content-Type": kind})
    ctx.log(f"uploaded {name} ({len(data)} bytes) to release {release_id}")
    return StepOutcome()


def _required(ctx: StepContext, key: str) -> str:
    value = ctx.prop(key)
    if not value:
        raise StepFailed(f"{ctx.step.name}: the option '{key}' is required", step=ctx.step.name)
    return value


def _auth(ctx: StepContext) -> dict[str, str]:
    token = _required(ctx, "token")
    return {"Authorization": f"token {token}", "Accept": "application/vnd.github.v3+json"}


def _repo(ctx: StepContext) -> str:
    owner = ctx.prop("owner") or ctx.env.get("WERCKER_GIT_OWNER", "")
    repo = ctx.prop("repo") or ctx.env.get("WERCKER_GIT_REPOSITORY", "")
    return f"{urllib.parse.quote(owner)}/{urllib.parse.quote(repo)}"


def _base(ctx: StepContext, option: str, variable: str, default: str) -> str:
    return (ctx.prop(option) or ctx.env.get(variable) or default).rstrip("/")


def _host_path(ctx: StepContext, given: str) -> Path:
    """A file named as the step sees it (a box path on docker) as the daemon sees it.

    The daemon reads the file, so in a box only what the box shares with the
    daemon (the bind-mounted directories) can be uploaded, and a link or
    ``..`` leading out of them is refused: a pipeline in a box must never
    get the daemon to upload the daemon's own files.
    """
    dirs = ctx.job.dirs
    hosts = {
        "WERCKER_ROOT": dirs.root,
        "WERCKER_SOURCE_DIR": dirs.source,
        "WERCKER_OUTPUT_DIR": dirs.output,
        "WERCKER_CACHE_DIR": dirs.cache,
        "WERCKER_REPORT_DIR": dirs.report,
    }
    seen = posixpath.normpath(
        posixpath.join(ctx.workdir or ctx.env.get("WERCKER_SOURCE_DIR", ""), given)
    )
    inside_paths = ctx.backend.env_paths()
    if inside_paths.get("WERCKER_OUTPUT_DIR") == str(dirs.output):
        return Path(seen)  # the host executor: the step and the daemon see the same files
    for var in DIR_VARS:
        inside = inside_paths.get(var, "")
        if var in hosts and inside and (seen == inside or seen.startswith(inside + "/")):
            shared = hosts[var] / posixpath.relpath(seen, inside)
            if shared.exists():
                real = shared.resolve()
                if not real.is_relative_to(hosts[var].resolve()):
                    raise StepFailed(
                        f"{ctx.step.name}: {given} links out of the pipeline's directories",
                        step=ctx.step.name,
                    )
                return real
    raise StepFailed(
        f"{ctx.step.name}: {given} is not in a directory the box shares with scratchd "
        "(write it under $WERCKER_OUTPUT_DIR)",
        step=ctx.step.name,
    )
