"""The aiohttp app: context, fault middleware, stream helpers, /poll and /longpoll (/sse and
/ws live in sse_endpoint.py and ws_endpoint.py; other modules add routes of their own).

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
from socket import SO_SNDBUF, SOL_SOCKET

from aiohttp import web

from rtplay.protocol.envelope import Envelope
from rtplay.protocol.faults import Kind
from servers.core.connections import ConnectionRegistry
from servers.core.faults import FaultState
from servers.core.hub import Backlog
from servers.core.pubsub import SLOW_CONSUMER, Broadcaster, Subscription
from servers.core.throttle import TokenBucket
from servers.http import answers

log = logging.getLogger(__name__)

#: Largest request body accepted (control API, WebRTC offers). An SDP offer is a few KiB.
MAX_REQUEST_BYTES = 64 * 1024

#: Envelopes written per write call when a stream catches up (bounds one write's size).
WRITE_BATCH = 256

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

#: Kernel send buffer of a streaming connection (SSE, WebSocket). Linux autotunes it up to
#: 4 MiB, which a reader that stopped reading fills before anything pushes back on the writer
#: (~40 s at 1000 msg/s): 256 KiB is still seconds of stream for a live consumer, and makes
#: a stuck one block the writer, so the slow-consumer deadline applies, within seconds.
STREAM_SNDBUF_BYTES = 256 * 1024

#: How long a slow consumer gets to read the stream's last words (the reason it is cut)
#: before its connection is aborted: bounded, so a peer that reads nothing costs nothing.
GOODBYE_TIMEOUT_S = 1.0

#: Longest single sleep of a throttled sender: a cleared or changed throttle, or a closed
#: connection, is noticed within this long (the fault engine promises 100 ms).
THROTTLE_STEP_S = 0.1


@dataclass
class HttpConfig:
    """Knobs of the HTTP endpoints."""

    sse_retry_ms: int = 1000
    """Sent as the stream's first ``retry:`` line: the EventSource reconnection time."""
    sse_heartbeat_s: float = 15.0
    """Interval of ``: ping`` comments on an idle stream."""
    ws_heartbeat_s: float = 10.0
    """A WebSocket peer silent for about this long is pinged, and dropped when half as long
    again passes without a pong (:mod:`servers.http.ws_heartbeat`); 0 turns the heartbeat off."""
    longpoll_timeout_s: float = 25.0
    """Default hold of /longpoll when the client names none."""
    error_retry_after_s: int = 2
    """``Retry-After`` sent with a 503 error fault."""
    header_timeout_s: float = 10.0
    """A connection must send a complete request head this soon after it opens (slowloris)."""
    idle_timeout_s: float = 10.0
    """An idle keep-alive connection is closed after this long without a new request."""
    stream_write_timeout_s: float = 5.0
    """A stream write (SSE, WebSocket) the peer does not take within this long marks it a slow
    consumer: it is sent the reason and disconnected, like one whose queue overflows."""


@dataclass
class ServerContext:
    broadcaster: Broadcaster
    faults: FaultState = field(default_factory=FaultState)
    registry: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    config: HttpConfig = field(default_factory=HttpConfig)
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    """Per-transport token buckets of the throttle fault."""


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


def _bound_send_buffer(request: web.Request) -> None:
    """Cap the kernel's send buffer of this (streaming) connection: see STREAM_SNDBUF_BYTES."""
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(SOL_SOCKET, SO_SNDBUF, STREAM_SNDBUF_BYTES)


def _closed(request: web.Request) -> Callable[[], bool]:
    def closed() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    return closed


async def _within(ctx: ServerContext, sub: Subscription, write: Awaitable[None]) -> None:
    """Run one stream write; a peer that does not take it in time is a slow consumer."""
    try:
        async with asyncio.timeout(ctx.config.stream_write_timeout_s):
            await write
    except TimeoutError:
        sub.close(SLOW_CONSUMER)
        raise SlowConsumer(SLOW_CONSUMER) from None


class SlowConsumer(ConnectionError):
    """A stream's peer reads too slowly (its queue overflowed or a write timed out)."""


async def _goodbye(request: web.Request, last_words: Awaitable[None]) -> None:
    """Queue ``last_words`` and give the peer :data:`GOODBYE_TIMEOUT_S` to read what is
    buffered up to them; then close (everything was handed to the kernel) or abort."""
    transport = request.transport
    try:
        async with asyncio.timeout(GOODBYE_TIMEOUT_S):
            await last_words
            while transport is not None and transport.get_write_buffer_size() > 0:
                await asyncio.sleep(HOLD_STEP_S)
    except (TimeoutError, ConnectionError, RuntimeError):  # RuntimeError: aiohttp, once closing
        _abort(request)()
        return
    if transport is not None:
        transport.close()


def _abort(request: web.Request) -> Callable[[], None]:
    transport = request.transport

    def abort() -> None:
        if transport is not None:
            transport.abort()

    return abort


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
    await _wait_unstalled(ctx, transport)
    response = await handler(request)
    await _hold(ctx, transport)  # a delayed server answers late: the batch is ready, then held
    return response


async def _hold(ctx: ServerContext, transport: str) -> None:
    """Hold a ready response for ``transport``'s delay fault, if any (until it is cleared)."""
    delay = ctx.faults.delay_for(transport)
    end = time.monotonic() + delay
    while (wait := end - time.monotonic()) > 0 and ctx.faults.has(Kind.DELAY, transport):
        await asyncio.sleep(min(wait, HOLD_STEP_S))
        ctx.faults.expire(ctx.clock())


#: Granularity of a held response or envelope: a cleared stall or delay stops acting
#: within this long (the fault engine promises 100 ms).
HOLD_STEP_S = 0.02


async def _wait_unstalled(ctx: ServerContext, transport: str) -> None:
    while ctx.faults.stalled(transport):
        await asyncio.sleep(HOLD_STEP_S)
        ctx.faults.expire(ctx.clock())


async def _hold_envelope(ctx: ServerContext, transport: str, env: Envelope) -> None:
    """Streams: hold an envelope while stalled, and until ``t + delay`` under a delay fault.

    Delaying each envelope relative to its own send time keeps the stream's rate intact:
    a 200 ms delay shifts every message by 200 ms rather than spacing them 200 ms apart.
    Clearing the fault releases what is being held.
    """
    await _wait_unstalled(ctx, transport)
    delay = ctx.faults.delay_for(transport)
    if delay:
        target = env.t / 1000 + delay
        while (wait := target - time.time()) > 0 and ctx.faults.has(Kind.DELAY, transport):
            await asyncio.sleep(min(wait, HOLD_STEP_S))
            ctx.faults.expire(ctx.clock())


class Throttle:
    """A transport's share of a ``throttle`` fault (a no-op while none is active).

    The bucket is per transport, not per connection: a bandwidth limit is a property of the
    path, so back-to-back poll requests share it just as one long stream does.
    """

    def __init__(self, ctx: ServerContext, transport: str, closed: Callable[[], bool] = lambda: False) -> None:
        self.ctx = ctx
        self.transport = transport
        self.closed = closed
        """True once the connection is gone: a sleeping sender then stops (and unregisters)."""
        self.bucket = ctx.buckets.setdefault(transport, TokenBucket(ctx.clock()))

    async def __call__(self, nbytes: int) -> None:
        """Wait until ``nbytes`` may go out. The debt is slept in steps of at most
        :data:`THROTTLE_STEP_S`, so clearing the fault (or the peer leaving) ends the wait."""
        rate = self.ctx.faults.throttle_for(self.transport)
        if not rate:
            return
        end = self.ctx.clock() + self.bucket.delay_for(nbytes, rate, self.ctx.clock())
        while (wait := end - self.ctx.clock()) > 0:
            await asyncio.sleep(min(wait, THROTTLE_STEP_S))
            if self.closed():
                raise ConnectionResetError(f"{self.transport} peer left while throttled")
            self.ctx.faults.expire(self.ctx.clock())
            if self.ctx.faults.throttle_for(self.transport) != rate:  # cleared or changed
                self.bucket.reset(self.ctx.clock())
                return


# --- short polling and long-polling --------------------------------------------------------


async def poll(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    since = parse_cursor(request.query.get("since"))
    hub = ctx.broadcaster.hub
    backlog = hub.since(since)
    if answers.is_large(backlog):  # in pieces, at its reader's pace (servers.http.answers)
        await Throttle(ctx, "poll", _closed(request))(answers.answer_length(backlog, hub.last_seq))
        return await answers.send_pieces(request, backlog, hub.last_seq, ctx.config.stream_write_timeout_s)
    body = batch_json(backlog, hub.last_seq)
    await Throttle(ctx, "poll", _closed(request))(len(body))
    return web.Response(text=body, content_type="application/json")


async def longpoll(request: web.Request) -> web.StreamResponse:
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
            await Throttle(ctx, "longpoll", _closed(request))(answers.answer_length(backlog, hub.last_seq))
            return await answers.send_pieces(request, backlog, hub.last_seq, ctx.config.stream_write_timeout_s)
        body = batch_json(backlog, hub.last_seq)
        await Throttle(ctx, "longpoll", _closed(request))(len(body))
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
    # Imported here: the endpoint modules build on this one's context and stream helpers.
    from servers.http.sse import sse
    from servers.http.ws import ws

    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[fault_middleware])
    app[CTX] = ctx
    app.router.add_get("/poll", poll)
    app.router.add_get("/longpoll", longpoll)
    app.router.add_get("/sse", sse)
    app.router.add_get("/ws", ws)
    return app
