"""The ``webhook`` sink: JSON over HTTP POST, signed the Standard Webhooks way.

Spec (standardwebhooks.com): the signed content is ``"{id}.{timestamp}.{body}"``,
the key is the base64 secret (after an optional ``whsec_`` prefix), and the
``webhook-signature`` header is ``v1,<base64 HMAC-SHA256>``. ``webhook-id``
is the event id, the same on every retry, so a receiver that answered but
whose answer was lost can drop the duplicate. ``webhook-timestamp`` is the
time of *this* attempt: receivers reject old timestamps to stop replays.

Messages never contain the URL (it may carry a token) or the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable

from scratchd.errors import CredentialError, DeliveryError
from scratchd.models import Secret

USER_AGENT = "scratchd-notify/1"


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signing_key(secret: Secret) -> bytes:
    """Standard Webhooks: the secret is base64, optionally after a ``whsec_`` prefix."""
    text = secret.reveal().strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CredentialError("webhook secret is not base64 (expected whsec_<base64>)") from None
    if not key:
        raise CredentialError("webhook secret is empty")
    return key


class WebhookSink:
    def __init__(self, config, *, post=None, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._post = post or _requests_post
        self._clock = clock

    def secrets(self) -> list[str]:
        """Values the caller must mask (read now, as they may rotate)."""
        out = [self.config.target().reveal()]
        secret = self.config.secret()
        return [*out, secret.reveal()] if secret is not None else out

    def send(self, body: dict, event_id: str) -> None:
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        timestamp = int(self._clock())
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event_id,
            "webhook-timestamp": str(timestamp),
        }
        try:
            secret = self.config.secret()
            if secret is not None:
                headers["webhook-signature"] = sign(signing_key(secret), event_id, timestamp, data)
            url = self.config.target()
        except CredentialError as exc:
            raise DeliveryError(str(exc)) from None
        status = self._post(url.reveal(), data, headers, self.config.timeout, self.config.name)
        if not 200 <= status < 300:
            raise DeliveryError(f"sink {self.config.name}: HTTP {status}")


def _requests_post(url: str, data: bytes, headers: dict, timeout: float, name: str) -> int:
    import requests

    try:
        response = requests.post(
            url, data=data, headers=headers, timeout=timeout, allow_redirects=False
        )
    except (requests.ConnectionError, requests.Timeout) as exc:
        # Not str(exc): requests puts the URL (and any token in it) in its messages.
        raise DeliveryError(
            f"sink {name}: cannot reach the receiver ({type(exc).__name__})", unreachable=True
        ) from None
    except requests.RequestException as exc:
        raise DeliveryError(f"sink {name}: request failed ({type(exc).__name__})") from None
    response.close()
    return response.status_code
