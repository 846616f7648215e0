"""``scratchd web``: the read-only web page, live logs, JSON API, badges and metrics.

Its own process and unit, never the daemon's: a UI bug or a flood of
clients cannot stall builds, and the page never holds the daemon's Docker
access. It reads the state database read-only and follows log files. May
import errors, models and the store (read-only), nothing else of scratchd.
"""

from __future__ import annotations

import asyncio
import logging

from scratchd.web.app import create_app
from scratchd.web.settings import DEFAULT_BIND, RepoSite, WebSettings

__all__ = ["DEFAULT_BIND", "RepoSite", "WebSettings", "create_app", "serve"]

log = logging.getLogger(__name__)


class _ClientErrors(logging.Filter):
    """A malformed request is the client's problem: one line, not a traceback in the journal."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = "bad request: %s", (str(exc).splitlines()[0],)
            record.exc_info, record.exc_text, record.levelno = None, None, logging.INFO
            record.levelname = "INFO"
        return True


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve(settings: WebSettings, bind: str, ready=None) -> None:
    """Serve until cancelled; ``ready(url)`` is called once the socket listens."""
    from aiohttp import web

    host, port = split_bind(bind)
    server_log = logging.getLogger("scratchd.web.server")
    if not any(isinstance(f, _ClientErrors) for f in server_log.filters):
        server_log.addFilter(_ClientErrors())
    runner = web.AppRunner(
        create_app(settings),
        access_log=None,
        handle_signals=False,
        logger=server_log,
        shutdown_timeout=1.0,
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    server = site._server
    sockets = getattr(server, "sockets", None)  # an asyncio Server: its listening sockets
    sock = sockets[0] if sockets else None
    real_port = sock.getsockname()[1] if sock else port
    url = f"http://{host if ':' not in host else f'[{host}]'}:{real_port}"
    log.info("serving %s", url)
    if ready is not None:
        ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
