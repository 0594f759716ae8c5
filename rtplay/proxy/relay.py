"""The HTTP/1.1 relay: plain requests (polls, long-polls) and ``text/event-stream`` responses.

A thin adapter: it moves bytes between the client, the upstream and a :class:`~rtplay.proxy.
pipe.Pipe` per direction; the toxics' decisions are in :mod:`rtplay.proxy.shaping`. An event
stream is cut into events (:mod:`rtplay.proxy.sseframe`) and read by rtplay's WHATWG parser, so
faults act per event and the wire view learns each ``id`` and ``retry:``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from rtplay.model.eventsource import EventStreamParser, SSEProtocolError
from rtplay.proxy.links import Link, RelayContext, forward_headers
from rtplay.proxy.pipe import Pipe
from rtplay.proxy.shaping import Shaper, Step, refusal
from rtplay.proxy.sseframe import BlockTooLong, EventFramer
from rtplay.proxy.toxics import DOWNSTREAM, UPSTREAM
from rtplay.proxy.wire import Connection

log = logging.getLogger(__name__)

#: Largest request body relayed (polls and long-polls send none; a form or JSON post is small).
#: aiohttp's own default bound; a bigger body is refused with 413 before anything goes upstream.
MAX_REQUEST_BODY = 1 << 20

#: Errors reaching the upstream that mean "it is down or unreachable" (answered with 502).
UPSTREAM_ERRORS = (aiohttp.ClientError, OSError, asyncio.TimeoutError)


def client_address(request: web.Request) -> str:
    return request.remote or "unknown"


def error_answer(status: int, retry_after: float, text: str) -> web.Response:
    """The answer of an ``error`` fault: 503 (and 429) carry ``Retry-After`` (RFC 9110 §10.2.3)."""
    headers = {"Retry-After": f"{retry_after:g}"} if status in (429, 503) else {}
    if status == 204:
        return web.Response(status=204, headers=headers)
    return web.Response(status=status, headers=headers, text=text)


def upstream_down(ctx: RelayContext, conn: Connection, exc: BaseException) -> web.Response:
    reason = str(exc) or type(exc).__name__
    ctx.wire.refused(conn, 502, f"upstream unreachable: {reason}")
    log.info("proxy: upstream %s unreachable for %s: %s", ctx.upstream, conn.path, reason)
    return web.Response(status=502, text=f"rtplay proxy: upstream {ctx.upstream} unreachable: {reason}\n")


async def wait_until(clock: Callable[[], float], due: float) -> None:
    delay = due - clock()
    if delay > 0:
        await asyncio.sleep(delay)


async def relay_http(ctx: RelayContext, request: web.Request) -> web.StreamResponse:
    """Relay one request; its answer goes through the downstream toxics."""
    # An EventSource always asks for text/event-stream (WHATWG HTML §9.2.2, step 9).
    kind = "sse" if "text/event-stream" in request.headers.get("Accept", "") else "http"
    conn = ctx.wire.opened(
        kind, client_address(request), request.path, request.query_string,
        request.headers.get("Last-Event-ID"), ctx.clock(),
    )
    handler = asyncio.current_task()
    link = Link(conn, request.transport, lambda: handler.cancel() if handler is not asyncio.current_task() else None)
    down, up = ctx.shaper(), ctx.shaper()
    ctx.links.add(link)
    link.refresh(ctx.toxics(), down)
    closed_by = "upstream"
    try:
        return await _exchange(ctx, request, conn, link, down, up)
    except (ConnectionResetError, asyncio.CancelledError):
        closed_by = "client"  # aiohttp ignores a reset client; a cancel is the client leaving or a drop
        raise
    finally:
        link.close()
        ctx.links.discard(link)
        ctx.wire.closed_conn(conn, ctx.clock(), "proxy" if link.aborted_by else closed_by, reason=link.aborted_by)


async def _exchange(
    ctx: RelayContext, request: web.Request, conn: Connection, link: Link, down: Shaper, up: Shaper
) -> web.StreamResponse:
    if (refused := refusal(ctx.toxics(), conn.kind)) is not None:
        status, retry_after = refused
        ctx.wire.refused(conn, status, f"error fault {status}")
        if status in (429, 503):
            ctx.wire.hinted(conn, retry_after=f"{retry_after:g}")
        return error_answer(status, retry_after, f"rtplay proxy: error fault {status}\n")
    step = up.plan(up.active(ctx.toxics(), conn.kind, UPSTREAM), 0, ctx.clock(), False)
    await wait_until(ctx.clock, step.due)
    if request.content_length is not None and request.content_length > MAX_REQUEST_BODY:
        return web.Response(status=413, text=f"rtplay proxy: request body over {MAX_REQUEST_BODY} bytes\n")
    body = await request.read() if request.body_exists else None
    headers = forward_headers(request.headers)
    headers["X-Forwarded-For"] = conn.client
    headers["X-Forwarded-Host"] = request.host
    try:
        response = await ctx.session.request(
            request.method, ctx.target(request.path_qs), headers=headers, data=body, allow_redirects=False,
        )
    except UPSTREAM_ERRORS as exc:
        return upstream_down(ctx, conn, exc)
    async with response:
        is_sse = response.content_type == "text/event-stream"
        ctx.wire.became(conn, "sse" if is_sse else "http")
        conn.status = response.status
        if (retry_after := response.headers.get("Retry-After")) is not None:
            ctx.wire.hinted(conn, retry_after=retry_after)
        out = web.StreamResponse(status=response.status, reason=response.reason, headers=forward_headers(response.headers))
        if response.content_length is not None and not is_sse:
            out.content_length = response.content_length
        await out.prepare(request)
        writer = _Writer(ctx, conn, link, out)
        pipe: Pipe[bytes] = Pipe(lambda: conn.kind, DOWNSTREAM, ctx.source, down, writer.send, ctx.clock)
        try:
            if is_sse:
                await _pump_events(ctx, conn, link, response, pipe)
            else:
                async for chunk in response.content.iter_any():
                    await pipe.put(chunk, len(chunk), False)
            await pipe.finish()
        except ConnectionResetError:  # the client went away: the relay ends quietly
            ctx.wire.closed_conn(conn, ctx.clock(), "proxy" if link.aborted_by else "client", reason=link.aborted_by)
            return out
        finally:
            pipe.cancel()
        if pipe.closed_by_toxic:
            link.abort("limit_data")
            return out
        await _slow_close(ctx, conn, down)
        await out.write_eof()
        return out


async def _slow_close(ctx: RelayContext, conn: Connection, down: Shaper) -> None:
    """``slow_close``: hold the close for ``delay`` ms (Toxiproxy toxics/slow_close.go)."""
    for toxic in down.active(ctx.toxics(), conn.kind, DOWNSTREAM):
        if toxic.type == "slow_close":
            await asyncio.sleep(toxic.attr("delay") / 1000)


async def _pump_events(
    ctx: RelayContext, conn: Connection, link: Link, response: aiohttp.ClientResponse, pipe: Pipe[bytes]
) -> None:
    """Cut the upstream's event stream into events and queue each as one message."""
    framer = EventFramer()
    parser = EventStreamParser()
    retry: int | None = None
    try:
        async for chunk in response.content.iter_any():
            for block in framer.feed(chunk):
                events = parser.feed(block)
                if parser.reconnection_time_ms != retry:
                    retry = parser.reconnection_time_ms
                    ctx.wire.hinted(conn, sse_retry_ms=retry)
                await pipe.put(block, len(block), bool(events))
    except (SSEProtocolError, BlockTooLong) as exc:
        log.warning("proxy: event stream on %s broke a bound: %s", conn.path, exc)
        ctx.wire.route(conn.path, conn.kind).last_error = str(exc)
        link.abort(str(exc))


class _Writer:
    """Writes units to the client, sliced and truncated as a step says, and counts them."""

    def __init__(self, ctx: RelayContext, conn: Connection, link: Link, out: web.StreamResponse) -> None:
        self._ctx, self._conn, self._out = ctx, conn, out
        self._parser = EventStreamParser() if conn.kind == "sse" else None

    async def send(self, data: bytes, step: Step) -> None:
        if step.keep_bytes is not None:
            data = data[: step.keep_bytes]
        if step.pieces:
            await _write_pieces(self._out.write, data, step)
        else:
            await self._out.write(data)
        message = False
        if self._parser is not None:
            events = self._parser.feed(data)
            message = bool(events)
            if events:
                self._conn.last_event_id = events[-1].last_event_id
        self._ctx.wire.carried(self._conn, DOWNSTREAM, len(data), step.added_s, self._ctx.clock(), message or self._parser is None)


async def _write_pieces(write: Callable[[bytes], Awaitable[None]], data: bytes, step: Step) -> None:
    """``slicer``: the chunk in pieces, ``delay`` µs apart."""
    pos = 0
    for index, size in enumerate(step.pieces):
        if index and step.piece_gap_s:
            await asyncio.sleep(step.piece_gap_s)
        await write(data[pos : pos + size])
        pos += size
