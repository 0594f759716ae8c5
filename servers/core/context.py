"""What every listener shares: the server's context and the faults that shape a stream.

A delay or stall holds envelopes and answers, a throttle paces bytes; each listener (HTTP,
WebTransport, WebRTC) only calls these, so a fault acts alike on every transport.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rtplay.protocol.envelope import Envelope
from rtplay.protocol.faults import Kind
from servers.core.connections import ConnectionRegistry
from servers.core.faults import FaultState
from servers.core.pubsub import Broadcaster
from servers.core.throttle import TokenBucket

#: Envelopes written per write call when a stream catches up (bounds one write's size).
WRITE_BATCH = 256

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
    """The state every listener's handlers share."""

    broadcaster: Broadcaster
    faults: FaultState = field(default_factory=FaultState)
    registry: ConnectionRegistry = field(default_factory=ConnectionRegistry)
    config: HttpConfig = field(default_factory=HttpConfig)
    clock: Callable[[], float] = time.monotonic
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    """Per-transport token buckets of the throttle fault."""


async def hold_response(ctx: ServerContext, transport: str) -> None:
    """Hold a ready response for ``transport``'s delay fault, if any (until it is cleared)."""
    delay = ctx.faults.delay_for(transport)
    end = time.monotonic() + delay
    while (wait := end - time.monotonic()) > 0 and ctx.faults.has(Kind.DELAY, transport):
        await asyncio.sleep(min(wait, HOLD_STEP_S))
        ctx.faults.expire(ctx.clock())


#: Granularity of a held response or envelope: a cleared stall or delay stops acting
#: within this long (the fault engine promises 100 ms).
HOLD_STEP_S = 0.02


async def wait_unstalled(ctx: ServerContext, transport: str) -> None:
    while ctx.faults.stalled(transport):
        await asyncio.sleep(HOLD_STEP_S)
        ctx.faults.expire(ctx.clock())


async def hold_envelope(ctx: ServerContext, transport: str, env: Envelope) -> None:
    """Streams: hold an envelope while stalled, and until ``t + delay`` under a delay fault.

    Delaying each envelope relative to its own send time keeps the stream's rate intact:
    a 200 ms delay shifts every message by 200 ms rather than spacing them 200 ms apart.
    Clearing the fault releases what is being held.
    """
    await wait_unstalled(ctx, transport)
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
