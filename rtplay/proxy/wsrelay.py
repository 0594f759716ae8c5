"""The WebSocket relay: one upstream WebSocket per client, relayed message by message.

Each direction is a :class:`~rtplay.proxy.pipe.Pipe`, so delay, loss, duplicate, reorder,
stall and throttle act per message. Close codes and reasons pass through unchanged (RFC 6455
§7.1.5-6); an upstream that vanishes without a close frame (1006) makes the proxy vanish too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import WSMsgType, web

from rtplay.proxy.links import Link, RelayContext
from rtplay.proxy.pipe import Pipe
from rtplay.proxy.relay import UPSTREAM_ERRORS, client_address, error_answer, upstream_down
from rtplay.proxy.shaping import Shaper, Step, refusal
from rtplay.proxy.toxics import DOWNSTREAM, UPSTREAM
from rtplay.proxy.wire import Connection

log = logging.getLogger(__name__)

#: Largest WebSocket message relayed, either way. Past it the sender's side is closed with
#: 1009 "message too big" (RFC 6455 §7.4.1). A megabyte is far beyond a real-time message
#: (rtplay's are ~80 bytes) and keeps a thousand connections' worst case bounded.
MAX_WS_MESSAGE = 1 << 20

#: Request headers a WebSocket handshake forwards upstream (cookies and auth identify the user;
#: Origin lets the upstream apply its own cross-site check).
HANDSHAKE_HEADERS = ("Cookie", "Authorization", "Origin", "User-Agent", "Accept-Language")

#: Close codes that never travel in a close frame (RFC 6455 §7.4.1): "no status" and "abnormal".
UNSENDABLE = {1005, 1006, 1015}

Message = tuple[WSMsgType, str | bytes]


async def relay_ws(ctx: RelayContext, request: web.Request) -> web.StreamResponse:
    """Relay one WebSocket."""
    conn = ctx.wire.opened(
        "ws", client_address(request), request.path, request.query_string, request.headers.get("Last-Event-ID"), ctx.clock()
    )
    handler = asyncio.current_task()
    link = Link(conn, request.transport, lambda: handler.cancel() if handler is not asyncio.current_task() else None)
    ctx.links.add(link)
    try:
        return await _handshake(ctx, request, conn, link)
    finally:
        link.close()
        ctx.links.discard(link)
        if conn.closed is None:
            ctx.wire.closed_conn(conn, ctx.clock(), "proxy" if link.aborted_by else "client", reason=link.aborted_by)


async def _handshake(ctx: RelayContext, request: web.Request, conn: Connection, link: Link) -> web.StreamResponse:
    if (refused := refusal(ctx.toxics(), "ws")) is not None:
        status, retry_after = refused
        ctx.wire.refused(conn, status, f"error fault {status}")
        return error_answer(status, retry_after, f"rtplay proxy: error fault {status}\n")
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    headers = {h: request.headers[h] for h in HANDSHAKE_HEADERS if h in request.headers}
    try:
        upstream = await ctx.session.ws_connect(
            ctx.target(request.path_qs), protocols=protocols, headers=headers, max_msg_size=MAX_WS_MESSAGE,
            autoclose=False, autoping=True,
        )
    except aiohttp.WSServerHandshakeError as exc:
        ctx.wire.refused(conn, exc.status, f"upstream refused the handshake: {exc.message}")
        return web.Response(status=exc.status if exc.status >= 400 else 502, text=f"rtplay proxy: upstream refused: {exc.message}\n")
    except UPSTREAM_ERRORS as exc:
        return upstream_down(ctx, conn, exc)
    ws = web.WebSocketResponse(
        protocols=[upstream.protocol] if upstream.protocol else (), max_msg_size=MAX_WS_MESSAGE, autoclose=False
    )
    try:
        await ws.prepare(request)
        down_shaper = ctx.shaper()
        link.refresh(ctx.toxics(), down_shaper)
        await _relay(ctx, conn, link, ws, upstream, down_shaper)
    finally:
        await upstream.close()
    return ws


async def _relay(
    ctx: RelayContext, conn: Connection, link: Link, ws: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse, down_shaper: Shaper,
) -> None:
    def sender(
        target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, stream: str
    ) -> Callable[[Message, Step], Awaitable[None]]:
        async def send(message: Message, step: Step) -> None:
            kind, data = message
            if isinstance(data, str):
                await target.send_str(data)
                size = len(data.encode())
            else:
                await target.send_bytes(data)
                size = len(data)
            ctx.wire.carried(conn, stream, size, step.added_s, ctx.clock(), True)
        return send

    down: Pipe[Message] = Pipe(lambda: "ws", DOWNSTREAM, ctx.source, down_shaper, sender(ws, DOWNSTREAM), ctx.clock)
    up: Pipe[Message] = Pipe(lambda: "ws", UPSTREAM, ctx.source, ctx.shaper(), sender(upstream, UPSTREAM), ctx.clock)
    from_upstream = asyncio.create_task(_pump(upstream, down), name="ws-from-upstream")
    from_client = asyncio.create_task(_pump(ws, up), name="ws-from-client")
    tasks = {from_upstream, from_client}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        if first is from_upstream:
            code, reason = first.result()
            await down.finish()
            ctx.wire.closed_conn(conn, ctx.clock(), "upstream", code, reason)
            await _close(ws, code, reason, link)
        else:
            code, reason = first.result()
            await up.finish()
            ctx.wire.closed_conn(conn, ctx.clock(), "client", code, reason)
            await _close(upstream, code, reason, None)
    finally:
        for task in tasks:
            task.cancel()
        down.cancel()
        up.cancel()
        await asyncio.gather(*tasks, down.task, up.task, return_exceptions=True)


async def _pump(
    source: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, pipe: Pipe[Message]
) -> tuple[int | None, str]:
    """Queue every message of ``source`` until it closes; its close code and reason."""
    while True:
        msg = await source.receive()
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            data = msg.data
            await pipe.put((msg.type, data), len(data), True)
        elif msg.type == WSMsgType.CLOSE:
            return int(msg.data), str(msg.extra or "")
        elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
            code = source.close_code
            if msg.type == WSMsgType.ERROR:
                log.info("proxy: websocket error: %s", msg.data)
                code = 1009 if "too big" in str(msg.data).lower() or "size" in str(msg.data).lower() else 1006
            return code if code is not None else 1006, ""


async def _close(
    target: web.WebSocketResponse | aiohttp.ClientWebSocketResponse, code: int | None, reason: str, link: Link | None
) -> None:
    """Close ``target`` as its peer closed: the same code and reason; vanish on 1006."""
    if code is None or code in UNSENDABLE:
        if code == 1005:
            await target.close()
        elif link is not None:
            link.abort("upstream closed abnormally (1006)")
        else:
            await target.close(code=1001)
        return
    await target.close(code=code, message=reason.encode()[:123])
