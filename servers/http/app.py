"""The aiohttp app: the fault middleware, /poll, and the routes of /longpoll, /sse and /ws
(in :mod:`servers.http.longpoll`, :mod:`servers.http.sse` and :mod:`servers.http.ws`; other modules add routes of their own).

Each handler only moves envelopes from the broadcaster to its socket in its transport's
framing, consulting the fault state where a real fault would act.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from servers.core.context import ServerContext, Throttle, hold_response, wait_unstalled
from servers.http import answers
from servers.http.answers import batch_json
from servers.http.common import CTX, MAX_REQUEST_BYTES, closed_check, cursor_of
from servers.http.longpoll import install_held_polls, longpoll
from servers.http.sse import sse
from servers.http.ws import install_heartbeats, ws

log = logging.getLogger(__name__)


# --- faults that act on a whole request ---------------------------------------------------


_TRANSPORT_OF_PATH = {"/poll": "poll", "/longpoll": "longpoll", "/sse": "sse", "/ws": "ws"}


@web.middleware
async def fault_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``error CODE`` answers new requests with CODE; ``stall`` holds them; ``delay`` holds answers."""
    transport = _TRANSPORT_OF_PATH.get(request.path)
    if transport is None:
        return await handler(request)
    ctx = request.app[CTX]
    ctx.faults.expire(ctx.clock())
    code = ctx.faults.error_for(transport)
    if code is not None:
        headers = {"Retry-After": str(ctx.config.error_retry_after_s)} if code == 503 else None
        if code == 204:
            return web.Response(status=204)
        return web.json_response({"error": f"injected fault: error {code}"}, status=code, headers=headers)
    if transport not in ("poll", "longpoll"):
        return await handler(request)  # streams apply stall and delay per envelope
    await wait_unstalled(ctx, transport)
    response = await handler(request)
    await hold_response(ctx, transport)  # a delayed server answers late: the batch is ready, then held
    return response


# --- short polling and long-polling --------------------------------------------------------


async def poll(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    since = cursor_of(request.query.get("since"))
    hub = ctx.broadcaster.hub
    backlog = hub.since(since)
    if answers.is_large(backlog):  # in pieces, at its reader's pace (servers.http.answers)
        await Throttle(ctx, "poll", closed_check(request))(answers.answer_length(backlog, hub.last_seq))
        return await answers.send_pieces(request, backlog, hub.last_seq, ctx.config.stream_write_timeout_s)
    body = batch_json(backlog, hub.last_seq)
    await Throttle(ctx, "poll", closed_check(request))(len(body))
    return web.Response(text=body, content_type="application/json")


def build_app(ctx: ServerContext) -> web.Application:
    """The app with the four HTTP transports' routes (other modules add theirs)."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[fault_middleware])
    app[CTX] = ctx
    install_heartbeats(app, ctx)
    install_held_polls(app, ctx)
    app.router.add_get("/poll", poll)
    app.router.add_get("/longpoll", longpoll)
    app.router.add_get("/sse", sse)
    app.router.add_get("/ws", ws)
    return app
