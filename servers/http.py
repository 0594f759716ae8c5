"""The aiohttp app: /poll, /longpoll, /sse and /ws (plus routes other modules add).

Each handler only moves envelopes from the broadcaster to its socket in its transport's
framing, consulting the fault state where a real fault would act.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from servers.connections import ConnectionRegistry
from servers.faults import FaultState
from servers.hub import Backlog, Envelope
from servers.pubsub import Broadcaster, Subscription

log = logging.getLogger(__name__)

#: Largest request body accepted (control API, WebRTC offers). An SDP offer is a few KiB.
MAX_REQUEST_BYTES = 64 * 1024

#: Largest client→server WebSocket message: ours are ``{"ping": <float>}``, ~30 bytes.
MAX_WS_MESSAGE = 4 * 1024

#: Envelopes written per write call when a stream catches up (bounds one write's size).
WRITE_BATCH = 256

#: Longest a long-poll may be held, whatever the client asks.
MAX_LONGPOLL_TIMEOUT_S = 60.0


@dataclass
class HttpConfig:
    """Knobs of the HTTP endpoints."""

    sse_retry_ms: int = 1000
    """Sent as the stream's first ``retry:`` line: the EventSource reconnection time."""
    sse_heartbeat_s: float = 15.0
    """Interval of ``: ping`` comments on an idle stream."""
    ws_heartbeat_s: float = 10.0
    """Server WebSocket ping interval; a peer missing a pong for as long is closed."""
    longpoll_timeout_s: float = 25.0
    """Default hold of /longpoll when the client names none."""
    error_retry_after_s: int = 2
    """``Retry-After`` sent with a 503 error fault."""


@dataclass
class ServerContext:
    broadcaster: Broadcaster
    faults: FaultState = field(default_factory=FaultState)
    registry: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    config: HttpConfig = field(default_factory=HttpConfig)
    clock: Callable[[], float] = time.monotonic


CTX: web.AppKey[ServerContext] = web.AppKey("rtplay", ServerContext)


def bad_request(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


def parse_cursor(raw: str | None, name: str = "since") -> int:
    """A resume cursor: a non-negative integer (absent = 0)."""
    if raw is None or raw == "":
        return 0
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"{name} must be a non-negative integer, got {raw[:40]!r}"}),
            content_type="application/json",
        )
    return int(raw)


def batch_json(backlog: Backlog, last: int) -> str:
    """The /poll and /longpoll body, built from the envelopes' cached encodings."""
    body = '{"messages":[' + ",".join(e.json for e in backlog.messages) + f'],"last":{last}'
    if backlog.reset is not None:
        body += ',"reset":' + json.dumps(backlog.reset.to_json())
    return body + "}"


def _abort(request: web.Request) -> Callable[[], None]:
    transport = request.transport

    def abort() -> None:
        if transport is not None:
            transport.abort()

    return abort


# --- faults that act on a whole request ---------------------------------------------------


def _transport_of(path: str) -> str | None:
    return {"/poll": "poll", "/longpoll": "longpoll", "/sse": "sse", "/ws": "ws"}.get(path)


@web.middleware
async def fault_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """``error CODE`` answers new requests with CODE; ``stall``/``delay`` hold responses."""
    transport = _transport_of(request.path)
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
    if transport in ("poll", "longpoll"):
        await _hold(ctx, transport)
    return await handler(request)


async def _hold(ctx: ServerContext, transport: str) -> None:
    """Hold while ``transport`` is stalled, then for its delay fault, if any."""
    while ctx.faults.stalled(transport):
        await asyncio.sleep(0.05)
        ctx.faults.expire(ctx.clock())
    delay = ctx.faults.delay_for(transport)
    if delay:
        await asyncio.sleep(delay)


async def _hold_envelope(ctx: ServerContext, transport: str, env: Envelope) -> None:
    """Streams: hold an envelope while stalled, and until ``t + delay`` under a delay fault.

    Delaying each envelope relative to its own send time keeps the stream's rate intact:
    a 200 ms delay shifts every message by 200 ms rather than spacing them 200 ms apart.
    """
    while ctx.faults.stalled(transport):
        await asyncio.sleep(0.05)
        ctx.faults.expire(ctx.clock())
    delay = ctx.faults.delay_for(transport)
    if delay:
        wait = env.t / 1000 + delay - time.time()
        if wait > 0:
            await asyncio.sleep(wait)


# --- short polling and long-polling --------------------------------------------------------


async def poll(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    since = parse_cursor(request.query.get("since"))
    hub = ctx.broadcaster.hub
    return web.Response(text=batch_json(hub.since(since), hub.last_seq), content_type="application/json")


async def longpoll(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    since = parse_cursor(request.query.get("since"))
    raw_timeout = request.query.get("timeout")
    try:
        timeout = float(raw_timeout) if raw_timeout else ctx.config.longpoll_timeout_s
    except ValueError:
        return bad_request(f"timeout must be a number of seconds, got {raw_timeout[:40]!r}")
    if not 0 <= timeout <= MAX_LONGPOLL_TIMEOUT_S:
        return bad_request(f"timeout must be 0-{MAX_LONGPOLL_TIMEOUT_S:g} s")
    hub = ctx.broadcaster.hub
    with ctx.registry.track("longpoll", _abort(request)):
        backlog = hub.since(since)
        if not backlog.messages and backlog.reset is None:
            if not await ctx.broadcaster.wait_beyond(since, timeout):
                return web.Response(status=204)
            backlog = hub.since(since)
    return web.Response(text=batch_json(backlog, hub.last_seq), content_type="application/json")


# --- Server-Sent Events --------------------------------------------------------------------


def sse_event(env: Envelope) -> str:
    return f"id: {env.seq}\ndata: {env.json}\n\n"


async def sse(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    # WHATWG HTML §9.2.4: a reconnecting EventSource sends Last-Event-ID; ?lastEventId= is
    # for clients that cannot set headers (the header wins when both are present).
    raw = request.headers.get("Last-Event-ID", request.query.get("lastEventId"))
    cursor = parse_cursor(raw, "Last-Event-ID")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    sub, backlog = ctx.broadcaster.subscribe(cursor)
    try:
        with ctx.registry.track("sse", _abort(request)):
            head = f"retry: {ctx.config.sse_retry_ms}\n\n"
            if backlog.reset is not None:
                head += f"event: reset\ndata: {json.dumps(backlog.reset.to_json())}\n\n"
            await response.write(head.encode())
            last = await _write_backlog(ctx, "sse", backlog, cursor, response)
            await _stream_sse(ctx, sub, last, response)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        ctx.broadcaster.unsubscribe(sub)
    return response


async def _write_backlog(
    ctx: ServerContext, transport: str, backlog: Backlog, cursor: int, response: web.StreamResponse
) -> int:
    last = cursor
    for start in range(0, len(backlog.messages), WRITE_BATCH):
        chunk = backlog.messages[start : start + WRITE_BATCH]
        await _hold_envelope(ctx, transport, chunk[-1])
        await response.write("".join(map(sse_event, chunk)).encode())
        last = chunk[-1].seq
    return last


async def _stream_sse(ctx: ServerContext, sub: Subscription, last: int, response: web.StreamResponse) -> None:
    while True:
        env = await sub.get(timeout=ctx.config.sse_heartbeat_s)
        if env is None:
            if sub.closed.is_set():
                await response.write(f": closing: {sub.reason}\n\n".encode())
                return
            if not ctx.faults.stalled("sse"):
                await response.write(b": ping\n\n")
            continue
        batch = [e for e in [env, *sub.drain(WRITE_BATCH - 1)] if e.seq > last]
        if not batch:
            continue
        await _hold_envelope(ctx, "sse", batch[0])
        await response.write("".join(map(sse_event, batch)).encode())
        last = batch[-1].seq


# --- WebSocket -----------------------------------------------------------------------------


async def ws(request: web.Request) -> web.WebSocketResponse:
    ctx = request.app[CTX]
    since = parse_cursor(request.query.get("since"))
    socket = web.WebSocketResponse(heartbeat=ctx.config.ws_heartbeat_s, max_msg_size=MAX_WS_MESSAGE)
    await socket.prepare(request)
    sub, backlog = ctx.broadcaster.subscribe(since)
    with ctx.registry.track("ws", _abort(request)):
        sender = asyncio.create_task(_ws_send(ctx, socket, sub, backlog, since))
        try:
            await _ws_receive(ctx, socket)
        finally:
            sender.cancel()
            ctx.broadcaster.unsubscribe(sub)
            await asyncio.gather(sender, return_exceptions=True)
    return socket


async def _ws_receive(ctx: ServerContext, socket: web.WebSocketResponse) -> None:
    """Answer ``{"ping": t}`` with ``{"pong": t}``; anything else ends the connection."""
    async for msg in socket:
        if msg.type is not WSMsgType.TEXT:
            await socket.close(code=1003, message=b"only text frames are accepted")
            return
        try:
            payload = json.loads(msg.data)
            stamp = payload["ping"]
            if not isinstance(stamp, int | float):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            await socket.close(code=1008, message=b'expected {"ping": <number>}')
            return
        while ctx.faults.stalled("ws"):  # a stalled server answers nothing
            await asyncio.sleep(0.05)
            ctx.faults.expire(ctx.clock())
        await socket.send_str(json.dumps({"pong": stamp}))


async def _ws_send(
    ctx: ServerContext, socket: web.WebSocketResponse, sub: Subscription, backlog: Backlog, since: int
) -> None:
    try:
        if backlog.reset is not None:
            await socket.send_str(json.dumps({"reset": backlog.reset.to_json()}))
        last = since
        for env in backlog.messages:
            await _hold_envelope(ctx, "ws", env)
            await socket.send_str(env.json)
            last = env.seq
        while True:
            env = await sub.get()
            if env is None:
                await socket.close(code=1013, message=sub.reason.encode())
                return
            if env.seq <= last:
                continue
            await _hold_envelope(ctx, "ws", env)
            await socket.send_str(env.json)
            last = env.seq
    except (ConnectionResetError, RuntimeError) as exc:  # aiohttp raises these once closing
        log.debug("ws sender ended: %s", exc)


def build_app(ctx: ServerContext) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[fault_middleware])
    app[CTX] = ctx
    app.router.add_get("/poll", poll)
    app.router.add_get("/longpoll", longpoll)
    app.router.add_get("/sse", sse)
    app.router.add_get("/ws", ws)
    return app
