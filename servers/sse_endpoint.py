"""The /sse endpoint: Server-Sent Events (WHATWG HTML §9.2), resumable by Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from aiohttp import web

from rtplay.protocol.envelope import Envelope
from rtplay.protocol.faults import Kind
from servers.http import (
    CTX,
    WRITE_BATCH,
    ServerContext,
    SlowConsumer,
    Throttle,
    _abort,
    _bound_send_buffer,
    _closed,
    _goodbye,
    _hold_envelope,
    _within,
    parse_cursor,
)
from servers.hub import Backlog
from servers.pubsub import SLOW_CONSUMER, Subscription

log = logging.getLogger(__name__)


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
            "Access-Control-Allow-Origin": "*",  # a page of any origin may subscribe
        }
    )
    _bound_send_buffer(request)
    await response.prepare(request)
    sub, backlog = ctx.broadcaster.subscribe(cursor)
    try:
        with ctx.registry.track("sse", _abort(request)):
            stream = _SseStream(ctx, sub, response, Throttle(ctx, "sse", _closed(request)))
            head = f"retry: {ctx.config.sse_retry_ms}\n\n"
            if backlog.reset is not None:
                head += f"event: reset\ndata: {json.dumps(backlog.reset.to_json())}\n\n"
            await stream.send(head.encode())
            last = await _write_backlog(stream, backlog, cursor)
            await _stream_sse(stream, last)
    except SlowConsumer:
        log.info("sse: closing a slow consumer (%s)", sub.reason)
        await _goodbye(request, response.write(f"event: closing\ndata: {sub.reason}\n\n".encode()))
    except ConnectionError as exc:  # the peer went away (aiohttp's ClientConnectionResetError included)
        log.debug("sse stream ended: %s", exc)
    finally:
        ctx.broadcaster.unsubscribe(sub)
    return response


@dataclass
class _SseStream:
    """One SSE connection's writing side: faults, throttle and the slow-consumer deadline."""

    ctx: ServerContext
    sub: Subscription
    response: web.StreamResponse
    throttle: Throttle

    async def send(self, data: bytes) -> None:
        await _within(self.ctx, self.sub, self.response.write(data))

    async def events(self, batch: list[Envelope]) -> None:
        if self.ctx.faults.has(Kind.DELAY, "sse") or self.ctx.faults.stalled("sse"):
            groups = [[env] for env in batch]  # each envelope held until its own t + delay
        else:
            groups = [batch]
        for group in groups:
            await _hold_envelope(self.ctx, "sse", group[0])
            data = "".join(map(sse_event, group)).encode()
            await self.throttle(len(data))
            await self.send(data)


async def _write_backlog(stream: _SseStream, backlog: Backlog, cursor: int) -> int:
    """Replay ``backlog``, yielding to the loop after every batch: a burst of new subscribers
    each replaying thousands of envelopes takes turns with live traffic instead of starving it."""
    last = cursor
    for start in range(0, len(backlog.messages), WRITE_BATCH):
        chunk = backlog.messages[start : start + WRITE_BATCH]
        await stream.events(chunk)
        last = chunk[-1].seq
        await asyncio.sleep(0)
    return last


async def _stream_sse(stream: _SseStream, last: int) -> None:
    ctx, sub = stream.ctx, stream.sub
    while True:
        env = await sub.get(timeout=ctx.config.sse_heartbeat_s)
        if env is None:
            if sub.closed.is_set():
                if sub.reason == SLOW_CONSUMER:
                    raise SlowConsumer(sub.reason)
                # A named event, not a comment: a client can tell "too slow" from a crash.
                await stream.send(f"event: closing\ndata: {sub.reason}\n\n".encode())
                return
            if not ctx.faults.stalled("sse"):
                await stream.send(b": ping\n\n")
            continue
        batch = [e for e in [env, *sub.drain(WRITE_BATCH - 1)] if e.seq > last]
        if not batch:
            continue
        await stream.events(batch)
        last = batch[-1].seq
