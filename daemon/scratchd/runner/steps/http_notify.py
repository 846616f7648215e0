"""``slack-notifier``: post the pipeline's result to a Slack incoming webhook.

Options as wercker/step-slack's README: ``url`` (the webhook, a secret),
``channel``, ``username``, ``icon_url``, ``notify_on`` (``failed``: only
failures), and ``branch`` (only this branch). Meant for after-steps, where
``WERCKER_RESULT`` says how the pipeline ended.
"""

from __future__ import annotations

from scratchd.errors import StepFailed
from scratchd.runner.steps import StepContext, StepOutcome
from scratchd.runner.steps.webcall import post_json


def slack(ctx: StepContext) -> StepOutcome:
    url = ctx.prop("url")
    if not url:
        raise StepFailed("slack-notifier: the option 'url' is required", step=ctx.step.name)
    result = ctx.env.get("WERCKER_RESULT", "passed")
    branch = ctx.env.get("WERCKER_GIT_BRANCH", "")
    if ctx.prop("notify_on") == "failed" and result != "failed":
        ctx.log("slack-notifier: the pipeline passed and notify_on is 'failed': nothing sent")
        return StepOutcome()
    if ctx.prop("branch") and ctx.prop("branch") != branch:
        ctx.log(f"slack-notifier: branch {branch!r} is not {ctx.prop('branch')!r}: nothing sent")
        return StepOutcome()
    post_json(ctx.step.name, url, payload(ctx, result, branch))
    ctx.log(f"slack-notifier: {result} sent")
    return StepOutcome()


def payload(ctx: StepContext, result: str, branch: str) -> dict[str, object]:
    env = ctx.env
    repo = f"{env.get('WERCKER_GIT_OWNER', '')}/{env.get('WERCKER_GIT_REPOSITORY', '')}"
    what = "build" if env.get("BUILD") == "true" else "deploy"
    commit = env.get("WERCKER_GIT_COMMIT", "")[:8]
    text = f"{repo}: {what} of {branch} ({commit}) {result}"
    failed = env.get("WERCKER_FAILED_STEP_DISPLAY_NAME", "")
    if failed:
        text += f" at step {failed}: {env.get('WERCKER_FAILED_STEP_MESSAGE', '')}".rstrip(": ")
    message: dict[str, object] = {
        "username": ctx.prop("username") or "wercker",
        "attachments": [
            {"fallback": text, "text": text, "color": "good" if result == "passed" else "danger"}
        ],
    }
    channel = ctx.prop("channel")
    if channel:
        message["channel"] = channel if channel[0] in "#@" else f"#{channel}"
    if ctx.prop("icon_url"):
        message["icon_url"] = ctx.prop("icon_url")
    return message
