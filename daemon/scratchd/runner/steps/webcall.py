"""One HTTP request from the daemon for the notifying steps (Slack, GitHub).

The originals ran ``curl`` inside the box; a box need not have curl, and a
notification needs nothing of the box, so these requests are made here.
Failures are the step's failure (the user's URL or token), and their
messages never carry the request's credentials.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping

from scratchd.errors import StepFailed

TIMEOUT = 60.0


def call(
    step: str,
    method: str,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
) -> tuple[int, bytes]:
    """(status, body) of a 2xx answer; anything else raises StepFailed."""
    if not url.startswith(("http://", "https://")):
        raise StepFailed(f"{step}: the URL must start with http:// or https://", step=step)
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise StepFailed(f"{step}: {method} answered {exc.code}: {detail}", step=step) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StepFailed(f"{step}: request failed: {reason}", step=step) from None


def post_json(
    step: str, url: str, payload: object, headers: Mapping[str, str] | None = None
) -> object:
    """POST ``payload`` as JSON; the decoded JSON answer ({} when empty or not JSON)."""
    body = json.dumps(payload).encode()
    _, answer = call(
        step, "POST", url, body, {"Content-Type": "application/json", **(headers or {})}
    )
    try:
        return json.loads(answer) if answer else {}
    except ValueError:
        return {}
