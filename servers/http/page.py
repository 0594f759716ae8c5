"""``GET /``: a page where the browser itself is a client of every transport it has.

Open the server's URL in a browser: one panel per transport — poll and long-poll (fetch),
EventSource, WebSocket, WebTransport (pinned certificate hash) and RTCPeerConnection (both
data channels) — each with its state, delivered / lost / duplicates / reset, latency, a
reconnect log and a retry button. The page posts its figures to ``/browser/report``
(:mod:`servers.http.browser_report`) so rtplay can show the browser's decisions beside its own.
Everything is served from package data (``servers/static``): offline, no build step, no CDN.
CORS is open on the read endpoints so a page of your own, served from elsewhere, can
connect too, and read the reason of an error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

#: Paths a page from any origin may read. Never ``/control`` (see :mod:`servers.core.guard`)
#: nor ``/browser`` (only this server's own page reports; see :mod:`servers.http.browser_report`).
#: ``/page/config`` is readable too (a page of the user's own needs the certificate hash, which
#: changes at every start), but its report key goes to this server's own page only.
CORS_PREFIXES = ("/poll", "/longpoll", "/sse", "/rtc", "/page/config")

#: The page's files (package data), by name, with their content types. Only these are served.
STATIC = {
    "index.html": "text/html",
    "page.js": "text/javascript",
    "accounting.js": "text/javascript",
    "chart.js": "text/javascript",
    "retry.js": "text/javascript",
    "page.css": "text/css",
    "favicon.svg": "image/svg+xml",
    "uPlot.iife.min.js": "text/javascript",  # uPlot 1.6.32 from npm (dist/), the panels' charts
    "uPlot.min.css": "text/css",
    "uPlot.LICENSE": "text/plain",  # MIT: its licence travels with it
}


def static_file(name: str) -> bytes:
    """One of :data:`STATIC`, read from the installed package."""
    return resources.files("servers").joinpath("static", name).read_bytes()


def _serve(name: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    body, content_type = static_file(name), STATIC[name]

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, headers={"Cache-Control": "no-cache"})

    return handler


@web.middleware
async def cors_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``Access-Control-Allow-Origin: *`` on the read endpoints, and their preflights."""
    if not request.path.startswith(CORS_PREFIXES):
        return await handler(request)
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Last-Event-ID",
        # Fetch standard §3.2.3: only safelisted response headers are readable cross-origin
        # unless exposed; a 503's Retry-After is what a client's retry should honour.
        "Access-Control-Expose-Headers": "Retry-After",
    }
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=headers)
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # a 400 raised by a parser: the page must read its reason
        exc.headers.update(headers)
        raise
    if not response.prepared:  # a stream (SSE) sets them itself before its first byte
        response.headers.update(headers)
    return response


def same_origin(request: web.Request) -> bool:
    """Whether ``request`` comes from this server's own page (or from no page at all: a script).

    Fetch §3.1: a browser sends ``Origin`` on every cross-origin request, and Sec-Fetch-Site says
    where a request came from; a same-origin GET may carry neither."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin == f"{request.scheme}://{request.host}"
    return request.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")


def install(config: Callable[[], dict[str, str | int]]) -> Callable[[web.Application], None]:
    """An app hook: the page at ``/``, its files, ``/page/config`` (what the page cannot know:
    the WebTransport URL and certificate hash, from ``config()``), and CORS on the endpoints
    a foreign page may use."""

    async def page_config(request: web.Request) -> web.Response:
        answer = config()
        if not same_origin(request):  # a foreign page may read the rest, never the report key
            answer.pop("report_key", None)
        return web.json_response(answer, headers={"Cache-Control": "no-store"})

    def hook(app: web.Application) -> None:
        app.router.add_get("/", _serve("index.html"))
        app.router.add_get("/favicon.ico", _serve("favicon.svg"))
        for name in STATIC:
            app.router.add_get(f"/static/{name}", _serve(name))
        app.router.add_get("/page/config", page_config)
        app.middlewares.insert(0, cors_middleware)  # outermost: error-fault answers get CORS too

    return hook
