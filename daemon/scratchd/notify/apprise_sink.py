"""The ``apprise`` sink: one short human message to any apprise URL (mail, chat, push).

apprise is an optional extra (``pip install scratchd[notify]``) because the
daemon does not need it to build; a missing module is a delivery error with
the fix in it, and ``check-config`` reports it before the daemon starts.
The URL usually holds a token or a password: it is a Secret, registered with
the log masker before apprise (which logs on its own) ever sees it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from scratchd.errors import CredentialError, DeliveryError
from scratchd.notify.events import human
from scratchd.redact import Redactor

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
        title, text = human(body)
        with masked_in_apprise_logs(url.reveal()):
            if not notifier.add(url.reveal()):
                raise DeliveryError(f"sink {name}: apprise does not understand the URL")
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
    with masked_in_apprise_logs(url):
        understood = apprise.Apprise().add(url)
    if not understood:
        return "apprise does not understand this URL (see apprise's supported services)"
    return None


class _Masking(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self._redactor = Redactor([secret])

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._redactor.redact(record.getMessage())
        record.args = None
        return True


@contextlib.contextmanager
def masked_in_apprise_logs(url: str) -> Iterator[None]:
    """apprise logs the URLs it cannot parse, token and all: mask it on its logger."""
    logger = logging.getLogger("apprise")
    masking = _Masking(url)
    logger.addFilter(masking)
    try:
        yield
    finally:
        logger.removeFilter(masking)
