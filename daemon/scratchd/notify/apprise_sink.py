"""The ``apprise`` sink: one short human message to any apprise URL (mail, chat, push).

apprise is an optional extra (``pip install scratchd[notify]``) because the
daemon does not need it to build; a missing module is a delivery error with
the fix in it, and ``check-config`` reports it before the daemon starts.
The URL usually holds a token or a password: it is a Secret, registered with
the log masker before apprise (which logs on its own) ever sees it.
"""

from __future__ import annotations

from scratchd.errors import CredentialError, DeliveryError
from scratchd.notify.events import human

MISSING = "apprise is not installed (pip install 'scratchd[notify]')"


class AppriseSink:
    def __init__(self, config) -> None:
        self.config = config

    def secrets(self) -> list[str]:
        return [self.config.target().reveal()]

    def send(self, body: dict, event_id: str) -> None:
        name = self.config.name
        try:
            url = self.config.target()
        except CredentialError as exc:
            raise DeliveryError(str(exc)) from None
        notifier = _apprise(name)
        if not notifier.add(url.reveal()):
            raise DeliveryError(f"sink {name}: apprise does not understand the URL")
        title, text = human(body)
        if not notifier.notify(title=title, body=text):
            raise DeliveryError(f"sink {name}: apprise could not deliver the message")


def _apprise(name: str):
    try:
        import apprise
    except ModuleNotFoundError:
        raise DeliveryError(f"sink {name}: {MISSING}") from None
    return apprise.Apprise()


def url_problem(url: str) -> str | None:
    """Why apprise cannot use ``url`` (for ``check-config``), ``None`` when it can."""
    try:
        import apprise
    except ModuleNotFoundError:
        return MISSING
    if not apprise.Apprise().add(url):
        return "apprise does not understand this URL (see apprise's supported services)"
    return None
