"""The aiohttp application: routes, the error pages, the optional bearer token.

aiohttp serves every client from one asyncio loop: an SSE stream is a
coroutine waiting on a timer, not a thread, so fifty open log tabs cost
little; database and file reads go to worker threads so none of them
blocks the loop. Nothing here writes the state database or talks to Docker.

Errors never reach a client as a traceback: :func:`errors` turns bad input
into 4xx pages (or JSON under ``/api``), a missing or unreadable state
database into 503, and anything else into a plain 500 logged server-side.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import time
from pathlib import Path

from aiohttp import web
from prometheus_client import generate_latest

from scratchd.errors import BadRequestError, ScratchdError
from scratchd.web import badge, html, pages, sse, views
from scratchd.web.hub import ChangeHub, StatusCache
from scratchd.web.logs import LineCounts, line_range, tail
from scratchd.web.metrics import make_registry
from scratchd.web.settings import WebSettings
from scratchd.web.state import ReadOnlyState, StateUnavailable
from scratchd.web.steps import parse_steps

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}
#: generate_latest writes the 0.0.4 text format, which every Prometheus release reads.
METRICS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
ID = r"{id:\d{1,18}}"
NAME = r"{name:[^/]{1,200}}"

STATE = web.AppKey("state", ReadOnlyState)
SETTINGS = web.AppKey("settings", WebSettings)
METRICS = web.AppKey("metrics", object)
HUB = web.AppKey("hub", ChangeHub)
BUILDS = web.AppKey("builds", StatusCache)
STEPS = web.AppKey("steps", dict)
LOGS = web.AppKey("logs", LineCounts)


def create_app(settings: WebSettings) -> web.Application:
    app = web.Application(middlewares=[server_timing, errors, auth], client_max_size=1024)
    app[SETTINGS] = settings
    app[STATE] = ReadOnlyState(settings.state_dir)
    app[METRICS] = make_registry(app[STATE], settings)
    app[STEPS] = {}
    app[LOGS] = LineCounts()
    app.on_startup.append(_start_hubs)
    app.router.add_get("/", dashboard)
    app.router.add_get("/builds", builds)
    app.router.add_get(f"/builds/{ID}", build)
    app.router.add_get(f"/builds/{ID}/log.txt", raw_log)
    app.router.add_get(f"/builds/{ID}/log.json", api_log)  # the page's "load earlier"
    app.router.add_get(f"/builds/{ID}/steps.json", steps_json)
    app.router.add_get(f"/repos/{NAME}", repo)
    app.router.add_get(f"/badge/{NAME}.svg", badge_svg)
    app.router.add_get(f"/badge/{NAME}/{{branch:.{{1,200}}}}.svg", badge_svg)
    app.router.add_get("/static/{asset}", static)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    # The pages' own live streams, and the same under /api for machines (token-protected).
    for prefix in ("", "/api"):
        app.router.add_get(f"{prefix}/events", events)
        app.router.add_get(f"{prefix}/builds/{ID}/log/events", log_events)
    app.router.add_get("/api/status", api_status)
    app.router.add_get("/api/builds", api_builds)
    app.router.add_get(f"/api/builds/{ID}", api_build)
    app.router.add_get(f"/api/builds/{ID}/log", api_log)
    app.router.add_get(f"/api/repos/{NAME}", api_repo)
    return app


async def _start_hubs(app: web.Application) -> None:
    """Made in the serving loop (asyncio objects belong to one loop)."""
    app[HUB] = ChangeHub(app[STATE], app[SETTINGS].poll)
    app[BUILDS] = StatusCache(app[STATE], app[SETTINGS].poll)


def _is_api(request: web.Request) -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def _error(request: web.Request, status: int, reason: str, detail: str) -> web.Response:
    if _is_api(request):
        return web.json_response({"error": detail, "status": status}, status=status)
    return web.Response(
        text=html.error_page(status, reason, detail), status=status, content_type="text/html"
    )


@web.middleware
async def server_timing(request: web.Request, handler):
    """``Server-Timing: app;dur=<ms>`` on every whole response: the page's own cost, as a
    browser's devtools and ``bench/web.py`` read it (a stream's headers leave too early)."""
    started = time.perf_counter()
    response = await handler(request)
    if not response.prepared:
        spent = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={spent:.2f}"
    return response


@web.middleware
async def errors(request: web.Request, handler):
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        response = _error(request, exc.status, exc.reason, detail)
        response.headers.update({k: v for k, v in exc.headers.items() if k == "WWW-Authenticate"})
        return response
    except StateUnavailable as exc:
        log.warning("state database unavailable: %s", exc)
        return _error(request, 503, "Service Unavailable", "the state database is unavailable")
    except BadRequestError as exc:
        return _error(request, 400, "Bad Request", str(exc))
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except ScratchdError as exc:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return _error(request, 503, "Service Unavailable", "the state is unavailable")
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return _error(request, 500, "Internal Server Error", "internal error (logged)")


@web.middleware
async def auth(request: web.Request, handler):
    """With a token configured, ``/api`` and ``/metrics`` need ``Authorization: Bearer``."""
    token = request.app[SETTINGS].token
    if token and _is_api(request):
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise web.HTTPUnauthorized(
                text="a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
    return await handler(request)


def _run(request: web.Request, func, *args):
    return asyncio.to_thread(func, *args)


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html")


async def _build_or_404(request: web.Request):
    build_id = int(request.match_info["id"])
    found = await _run(request, request.app[STATE].build, build_id)
    if found is None:
        raise web.HTTPNotFound(text=f"no build #{build_id}")
    return found


def _log_path(request: web.Request, build) -> Path:
    """Only ever a path the store layout gives for the build: no path comes from the URL."""
    return request.app[STATE].dirs.log_path(build.repo, build.id)


def _repo_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not views.NAME.fullmatch(name):
        raise web.HTTPNotFound(text="no such repository")
    return name


# -- pages ------------------------------------------------------------------------


async def dashboard(request: web.Request) -> web.Response:
    app = request.app
    data = await _run(request, views.status, app[STATE], app[SETTINGS], time.time())
    return _html(pages.dashboard(data, time.time()))


async def builds(request: web.Request) -> web.Response:
    flt = views.BuildFilter.parse(request.query)
    state = request.app[STATE]
    data = await _run(request, views.builds, state, flt)
    names = [r.name for r in request.app[SETTINGS].repos]
    names += [n for n in await _run(request, state.repo_names) if n not in names]
    return _html(pages.builds(data, flt, names, time.time()))


async def repo(request: web.Request) -> web.Response:
    name = _repo_name(request)
    app = request.app
    data = await _run(request, views.repo, app[STATE], app[SETTINGS], name, time.time())
    if data is None:
        raise web.HTTPNotFound(text=f"no repository {name!r}")
    base = f"{request.scheme}://{request.host}"
    return _html(pages.repo(data, base, time.time()))


def _log_size(path: Path) -> int:
    from scratchd.store.logs import gz_path

    for candidate in (path, gz_path(path)):
        with contextlib.suppress(OSError):
            return candidate.stat().st_size * (1 if candidate == path else 8)
    return 0


def _steps(build, path: Path, cache: dict) -> list[dict]:
    """Steps from the log; a finished (gzip'd) log never changes, so its steps are kept."""
    from scratchd.store.logs import gz_path
    from scratchd.web.logs import open_log

    key = None
    with contextlib.suppress(OSError):
        st = gz_path(path).stat()
        key = (str(path), st.st_size, st.st_mtime_ns, str(build.status), build.failed_step)
    if key is not None and key in cache:
        return cache[key]
    f = open_log(path)
    if f is None:
        return []
    with f:
        steps = [s.to_json() for s in parse_steps(f.read(), build)]
    if key is not None:
        if len(cache) > 256:
            cache.clear()
        cache[key] = steps
    return steps


#: Above this size the page does not wait for the steps: its script fetches them after the log.
STEPS_INLINE = 2_000_000


def _build_view(
    state, settings, build, path: Path, cache: dict, *, lazy: bool = False, counts=None
):
    steps = None if lazy and _log_size(path) > STEPS_INLINE else _steps(build, path, cache)
    piece = tail(path, settings.tail_lines, counts)
    log_data = (
        {"first": piece.first, "total": piece.total, "lines": piece.lines}
        if piece
        else {"first": 1, "total": 0, "lines": []}
    )
    return steps, log_data


async def build(request: web.Request) -> web.Response:
    found = await _build_or_404(request)
    app = request.app
    path = _log_path(request, found)
    view = functools.partial(_build_view, lazy=True, counts=app[LOGS])
    steps, log_data = await _run(request, view, app[STATE], app[SETTINGS], found, path, app[STEPS])
    return _html(pages.build(found.to_json(), steps, log_data, time.time()))


async def steps_json(request: web.Request) -> web.Response:
    """The steps of a build whose log was too big to wait for on the page."""
    found = await _build_or_404(request)
    path = _log_path(request, found)
    steps = await _run(request, _steps, found, path, request.app[STEPS])
    return _json({"steps": steps})


async def raw_log(request: web.Request) -> web.StreamResponse:
    from scratchd.web.logs import open_log

    found = await _build_or_404(request)
    f = await _run(request, open_log, _log_path(request, found))
    if f is None:
        raise web.HTTPNotFound(text=f"build #{found.id} has no log (yet)")
    headers = {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
    if request.query.get("download"):
        headers["Content-Disposition"] = f'attachment; filename="build-{found.id}.log"'
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    with f, contextlib.suppress(ConnectionResetError):  # a reader may hang up mid-way
        while chunk := await _run(request, f.read, 1 << 16):
            await response.write(chunk)
        await response.write_eof()
    return response


async def badge_svg(request: web.Request) -> web.Response:
    name = _repo_name(request)
    branch = request.match_info.get("branch")
    if branch is not None and not views.BRANCH.fullmatch(branch):
        raise web.HTTPNotFound(text="no such branch")
    status = await _run(request, badge.status_of, request.app[STATE], name, branch)
    return web.Response(
        text=badge.svg(name if branch is None else f"{name} {branch}", status),
        content_type="image/svg+xml",
        headers={"Cache-Control": "no-cache"},
    )


async def static(request: web.Request) -> web.Response:
    asset = request.match_info["asset"]
    if asset not in ASSETS:  # a fixed list: no path from the URL reaches the filesystem
        raise web.HTTPNotFound(text="no such file")
    body = await _run(request, (STATIC / asset).read_bytes)
    return web.Response(body=body, content_type=ASSETS[asset], charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    """200 when the state database can be read (not whether the daemon runs: see /api/status)."""
    await _run(request, request.app[STATE].last_event)
    return web.Response(text="ok\n")


async def metrics(request: web.Request) -> web.Response:
    body = await _run(request, generate_latest, request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": METRICS_TYPE})


# -- streams and JSON -----------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    return await sse.change_feed(request, request.app[HUB], request.app[SETTINGS])


async def log_events(request: web.Request) -> web.StreamResponse:
    found = await _build_or_404(request)
    path = _log_path(request, found)
    return await sse.log_stream(request, request.app[BUILDS], found.id, path, request.app[SETTINGS])


def _json(data) -> web.Response:
    return web.json_response(data, dumps=lambda d: json.dumps(d, indent=2))


async def api_status(request: web.Request) -> web.Response:
    app = request.app
    return _json(await _run(request, views.status, app[STATE], app[SETTINGS], time.time()))


async def api_builds(request: web.Request) -> web.Response:
    flt = views.BuildFilter.parse(request.query)
    return _json(await _run(request, views.builds, request.app[STATE], flt))


async def api_build(request: web.Request) -> web.Response:
    found = await _build_or_404(request)
    app = request.app
    steps, log_data = await _run(
        request,
        functools.partial(_build_view, counts=app[LOGS]),
        app[STATE],
        app[SETTINGS],
        found,
        _log_path(request, found),
        app[STEPS],
    )
    return _json({**found.to_json(), "steps": steps, "log_lines": log_data["total"]})


async def api_log(request: web.Request) -> web.Response:
    """``?start=&end=`` (1-based, inclusive; at most 10,000 lines), else the tail."""
    found = await _build_or_404(request)
    path = _log_path(request, found)
    raw = {k: request.query.get(k) for k in ("start", "end")}
    if any(v is not None and not (v.isdigit() and len(v) <= 12) for v in raw.values()):
        raise BadRequestError("start and end must be line numbers")
    if raw["start"] is None and raw["end"] is None:
        piece = await _run(request, tail, path, request.app[SETTINGS].tail_lines)
    else:
        start = max(1, int(raw["start"] or 1))
        end = int(raw["end"]) if raw["end"] else start + 9999
        end = min(end, start + 9999)
        piece = await _run(request, line_range, path, start, end)
    if piece is None:
        return _json({"first": 1, "total": 0, "lines": []})
    return _json({"first": piece.first, "total": piece.total, "lines": piece.lines})


async def api_repo(request: web.Request) -> web.Response:
    name = _repo_name(request)
    app = request.app
    data = await _run(request, views.repo, app[STATE], app[SETTINGS], name, time.time())
    if data is None:
        raise web.HTTPNotFound(text=f"no repository {name!r}")
    return _json(data)
