"""Sink type name → sink class; the one place that knows all of them."""

from __future__ import annotations

from scratchd.notify.apprise_sink import AppriseSink
from scratchd.notify.exec_sink import ExecSink
from scratchd.notify.webhook import WebhookSink

SINKS = {"webhook": WebhookSink, "apprise": AppriseSink, "exec": ExecSink}


def make_sink(config):
    """A sink for a ``[notify.sink.NAME]`` config (``send(body, event_id)``, ``secrets()``)."""
    return SINKS[config.type](config)
