"""The aiohttp app: the fault middleware, /poll and /longpoll, and the routes of /sse and /ws
(in :mod:`servers.http.sse` and :mod:`servers.http.ws`; other modules add routes of their own).

Each handler only moves envelopes from the broadcaster to its socket in its transport's
framing, consulting the fault state where a real fault would act.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from rtplay.protocol.faults import Kind
from servers.core.context import ServerContext, Throttle, hold_response, wait_unstalled
from servers.core.hub import Backlog
from servers.http import answers
from servers.http.common import CTX, MAX_REQUEST_BYTES, aborter, bad_request, closed_check, cursor_of
from servers.http.sse import sse
from servers.http.ws import install_heartbeats, ws

log = logging.getLogger(__name__)

#: Longest a long-poll may be held, whatever the client asks.
MAX_LONGPOLL_TIMEOUT_S = 60.0

#: A long-poll answer waits until its oldest message is this old, so that it carries the
#: messages published meanwhile too: a request costs ~1 ms of CPU (client and server), and at
#: 1000 msg/s an answer at once carried a single publisher burst (~4 messages), so long-poll
#: took a third of a core. 20 ms makes ~20 messages an answer, ~50 requests a second, for
#: at most 20 ms more latency (~10 ms on average). Only while messages come closer together
#: than :data:`DENSE_GAP_MS` (≥ 200 msg/s): at lower rates an answer goes out at once.
LONGPOLL_COALESCE_S = 0.02

#: Envelopes stamped closer together than this make a stream dense enough to coalesce.
DENSE_GAP_MS = 5.0

def batch_json(backlog: Backlog, last: int) -> str:
    """The /poll and /longpoll body, built from the envelopes' cached encodings."""
    body = '{"messages":[' + ",".join(e.json for e in backlog.messages) + f'],"last":{last}'
    if backlog.reset is not None:
        body += ',"reset":' + json.dumps(backlog.reset.to_json())
    return body + "}"


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


async def longpoll(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    since = cursor_of(request.query.get("since"))
    raw_timeout = request.query.get("timeout")
    try:
        timeout = float(raw_timeout) if raw_timeout else ctx.config.longpoll_timeout_s
    except ValueError:
        return bad_request(f"timeout must be a number of seconds, got {(raw_timeout or '')[:40]!r}")
    if not 0 <= timeout <= MAX_LONGPOLL_TIMEOUT_S:
        return bad_request(f"timeout must be 0-{MAX_LONGPOLL_TIMEOUT_S:g} s")
    hub = ctx.broadcaster.hub
    with ctx.registry.track("longpoll", aborter(request)):
        held_until = time.monotonic() + timeout
        backlog = hub.since(since)
        if not backlog.messages and backlog.reset is None:
            if not await ctx.broadcaster.wait_beyond(since, timeout):
                return web.Response(status=204)
            backlog = hub.since(since)
        # A throttle or a delay holds the answer longer anyway; a window on top would only grow
        # the next body (and under a throttle, the wait for it, round after round).
        shaped = ctx.faults.throttle_for("longpoll") or ctx.faults.has(Kind.DELAY, "longpoll")
        if backlog.reset is None and not shaped:
            hold = coalesce_delay(backlog.messages[0].t, hub.gap_ms(), time.time() * 1000)
            if hold > 0:
                await asyncio.sleep(min(hold, max(0.0, held_until - time.monotonic())))
                backlog = hub.since(since)
        if answers.is_large(backlog):  # in pieces, at its reader's pace (servers.http.answers)
            await Throttle(ctx, "longpoll", closed_check(request))(answers.answer_length(backlog, hub.last_seq))
            return await answers.send_pieces(request, backlog, hub.last_seq, ctx.config.stream_write_timeout_s)
        body = batch_json(backlog, hub.last_seq)
        await Throttle(ctx, "longpoll", closed_check(request))(len(body))
    return web.Response(text=body, content_type="application/json")


def coalesce_delay(oldest_ms: float, gap_ms: float | None, now_ms: float) -> float:
    """Seconds a long-poll answer whose oldest message was stamped ``oldest_ms`` waits to
    carry more (see :data:`LONGPOLL_COALESCE_S`); 0 while the stream is sparse (the two
    newest envelopes ``gap_ms`` apart, None: fewer than two)."""
    if gap_ms is None or gap_ms >= DENSE_GAP_MS:
        return 0.0
    return max(0.0, (oldest_ms + LONGPOLL_COALESCE_S * 1000 - now_ms) / 1000)


def build_app(ctx: ServerContext) -> web.Application:
    """The app with the four HTTP transports' routes (other modules add theirs)."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[fault_middleware])
    app[CTX] = ctx
    install_heartbeats(app, ctx)
    app.router.add_get("/poll", poll)
    app.router.add_get("/longpoll", longpoll)
    app.router.add_get("/sse", sse)
    app.router.add_get("/ws", ws)
    return app
