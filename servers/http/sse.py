"""The /sse endpoint: Server-Sent Events (WHATWG HTML §9.2), resumable by Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from rtplay.protocol.envelope import Envelope
from servers.core.context import ServerContext, Throttle
from servers.core.pubsub import Subscription
from servers.http.common import CTX, SlowConsumer, aborter, bound_send_buffer, closed_check, cursor_of, goodbye, within
from servers.http.streams import EnvelopeStream, SharedFrame, relay

log = logging.getLogger(__name__)


def sse_event(env: Envelope) -> str:
    return f"id: {env.seq}\ndata: {env.json}\n\n"


def chunk(data: bytes) -> bytes:
    """``data`` as one chunk of HTTP/1.1's chunked transfer coding (RFC 9112 §7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


#: The newest envelope as an SSE event, and as one chunk of a chunked response, for every sink.
SSE_EVENT = SharedFrame(lambda env: sse_event(env).encode())
SSE_CHUNK = SharedFrame(lambda env: chunk(SSE_EVENT(env)))


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
            stream = _SseStream(ctx, sub, Throttle(ctx, "sse", closed_check(request)), response, request.transport)
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

    __slots__ = ("response", "_transport", "_frame")

    transport = "sse"

    def __init__(
        self, ctx: ServerContext, sub: Subscription, throttle: Throttle, response: web.StreamResponse,
        transport: asyncio.Transport | None = None,
    ) -> None:
        super().__init__(ctx, sub, throttle)
        self.response = response
        self._transport = transport
        """Where the sink writes (None: it declines, the stream's task writes everything)."""
        # aiohttp chunks an HTTP/1.1 stream of unknown length; the sink frames alike.
        chunked = transport is not None and response.headers.get("Transfer-Encoding") == "chunked"
        self._frame = SSE_CHUNK if chunked else SSE_EVENT

    def sink(self, envelope: Envelope) -> bool:
        """The event straight to the socket: aiohttp's writer holds nothing of its own once the
        head is out (it was, before the stream's task first waits), so nothing is overtaken."""
        transport = self._transport
        if transport is None or transport.is_closing() or transport.get_write_buffer_size() or self.shaped():
            return False
        transport.write(self._frame(envelope))
        self.last = envelope.seq
        return True

    def encode(self, group: list[Envelope]) -> bytes:
        return "".join(map(sse_event, group)).encode()

    async def write(self, data: bytes) -> None:
        await within(self.ctx, self.sub, self.response.write(data))

    async def idle(self) -> None:
        if not self.ctx.faults.stalled("sse"):
            await self.write(b": ping\n\n")
