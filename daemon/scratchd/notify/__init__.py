"""Notifications: outbox events → signed webhooks, apprise URLs, exec programs.

The store writes events with each status change (:mod:`scratchd.store.outbox`);
:class:`Sender` delivers them from its own thread with retries, and
:func:`send_sample` is ``scratchd notify test``.
"""

from scratchd.notify.events import payload, sample_event
from scratchd.notify.sender import Sender
from scratchd.notify.sinks import make_sink

__all__ = ["Sender", "make_sink", "payload", "sample_event", "send_sample"]


def send_sample(sink_config, *, web_url: str = "", repo: str = "example") -> str:
    """Send one sample ``build.finished`` to ``sink_config`` now; returns its event id."""
    event = sample_event(repo)
    make_sink(sink_config).send(payload(event, web_url=web_url), event.event_id)
    return event.event_id
