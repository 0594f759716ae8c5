"""The /sse endpoint: Server-Sent Events (WHATWG HTML §9.2), resumable by Last-Event-ID."""

from __future__ import annotations

import json
import logging

from aiohttp import web

from rtplay.protocol.envelope import Envelope
from servers.core.context import ServerContext, Throttle
from servers.core.pubsub import Subscription
from servers.http.common import CTX, SlowConsumer, aborter, bound_send_buffer, closed_check, cursor_of, goodbye, within
from servers.http.streams import EnvelopeStream, relay

log = logging.getLogger(__name__)


def sse_event(env: Envelope) -> str:
    return f"id: {env.seq}\ndata: {env.json}\n\n"


async def sse(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    # WHATWG HTML §9.2.4: a reconnecting EventSource sends Last-Event-ID; ?lastEventId= is
    # for clients that cannot set headers (the header wins when both are present).
    raw = request.headers.get("Last-Event-ID", request.query.get("lastEventId"))
    cursor = cursor_of(raw, "Last-Event-ID")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            "Access-Control-Allow-Origin": "*",  # a page of any origin may subscribe
        }
    )
    bound_send_buffer(request)
    await response.prepare(request)
    sub, backlog = ctx.broadcaster.subscribe(cursor)
    try:
        with ctx.registry.track("sse", aborter(request)):
            stream = _SseStream(ctx, sub, Throttle(ctx, "sse", closed_check(request)), response)
            head = f"retry: {ctx.config.sse_retry_ms}\n\n"
            if backlog.reset is not None:
                head += f"event: reset\ndata: {json.dumps(backlog.reset.to_json())}\n\n"
            await stream.write(head.encode())
            await relay(stream, backlog, backlog.after, idle_s=ctx.config.sse_heartbeat_s)
            # A named event, not a comment: a client can tell "too slow" from a crash.
            await stream.write(f"event: closing\ndata: {sub.reason}\n\n".encode())
    except SlowConsumer:
        log.info("sse: closing a slow consumer (%s)", sub.reason)
        await goodbye(request, response.write(f"event: closing\ndata: {sub.reason}\n\n".encode()))
    except ConnectionError as exc:  # the peer went away (aiohttp's ClientConnectionResetError included)
        log.debug("sse stream ended: %s", exc)
    finally:
        ctx.broadcaster.unsubscribe(sub)
    return response


class _SseStream(EnvelopeStream):
    """One SSE connection's writing side: the events of a batch in one write."""

    transport = "sse"

    def __init__(self, ctx: ServerContext, sub: Subscription, throttle: Throttle, response: web.StreamResponse) -> None:
        super().__init__(ctx, sub, throttle)
        self.response = response

    def encode(self, group: list[Envelope]) -> bytes:
        return "".join(map(sse_event, group)).encode()

    async def write(self, data: bytes) -> None:
        await within(self.ctx, self.sub, self.response.write(data))

    async def idle(self) -> None:
        if not self.ctx.faults.stalled("sse"):
            await self.write(b": ping\n\n")
