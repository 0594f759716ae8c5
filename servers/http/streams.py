"""What the two streaming endpoints (/sse and /ws) share: the replay, then live envelopes in
batches, each batch one write, with the stream faults (stall, delay, throttle) applied.

An endpoint says only how a batch is framed (:meth:`EnvelopeStream.encode`) and written
(:meth:`EnvelopeStream.write`); :func:`relay` does the rest. One write per batch matters:
a write is a syscall, and the publisher hands over a burst per wake-up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from rtplay.protocol.envelope import Envelope
from rtplay.protocol.faults import Kind
from rtplay.runtime.health import SLOW_CONSUMER
from servers.core.context import WRITE_BATCH, ServerContext, Throttle, hold_envelope
from servers.core.hub import Backlog
from servers.core.pubsub import Subscription
from servers.http.common import SlowConsumer


class SharedFrame:
    """The newest envelope in one framing, encoded once and shared by every subscriber.

    The publisher hands one envelope to thousands of connections in a row: the first sink to
    ask encodes it, the others get the same bytes (by the envelope's identity, so two servers
    in one process never mix)."""

    __slots__ = ("_encode", "_envelope", "_data")

    def __init__(self, encode: Callable[[Envelope], bytes]) -> None:
        self._encode = encode
        self._envelope: Envelope | None = None
        self._data = b""

    def __call__(self, envelope: Envelope) -> bytes:
        if envelope is not self._envelope:
            self._data = self._encode(envelope)
            self._envelope = envelope
        return self._data


class EnvelopeStream:
    """One streaming connection's writing side (subclassed per transport)."""

    __slots__ = ("ctx", "sub", "throttle", "last")

    transport = "?"

    def __init__(self, ctx: ServerContext, sub: Subscription, throttle: Throttle) -> None:
        self.ctx = ctx
        self.sub = sub
        self.throttle = throttle
        self.last = 0
        """The seq of the newest envelope written."""

    def shaped(self) -> bool:
        """Does a fault shape this transport's stream (each envelope held or paced)?"""
        faults, name = self.ctx.faults, self.transport
        if faults.none_active():
            return False
        return faults.has(Kind.DELAY, name) or faults.stalled(name) or bool(faults.throttle_for(name))

    def sink(self, envelope: Envelope) -> bool:
        """Write ``envelope`` now, from the publisher, if nothing needs the stream's task (see
        :class:`~servers.core.pubsub.Subscription`); False to have it queued."""
        return False

    def encode(self, group: list[Envelope]) -> bytes:
        """``group`` in the transport's framing."""
        raise NotImplementedError

    async def write(self, data: bytes) -> None:
        """Hand ``data`` to the peer (raises :class:`SlowConsumer` when it does not take it)."""
        raise NotImplementedError

    async def idle(self) -> None:
        """Nothing was published for a while (SSE sends a keep-alive comment)."""

    async def envelopes(self, batch: list[Envelope]) -> None:
        """Write ``batch``: in one write, or one per envelope while a delay or stall holds each."""
        faults, name = self.ctx.faults, self.transport
        if faults.has(Kind.DELAY, name) or faults.stalled(name):
            groups = [[env] for env in batch]  # each envelope held until its own t + delay
        else:
            groups = [batch]
        for group in groups:
            await hold_envelope(self.ctx, name, group[0])
            data = self.encode(group)
            await self.throttle(len(data))
            await self.write(data)


async def replay(stream: EnvelopeStream, backlog: Backlog, cursor: int) -> int:
    """Write ``backlog``; the last seq written (``cursor`` when none was).

    Yields to the loop after every batch: a burst of new subscribers each replaying
    thousands of envelopes takes turns with live traffic instead of starving it.
    """
    last = cursor
    for start in range(0, len(backlog.messages), WRITE_BATCH):
        chunk = backlog.messages[start : start + WRITE_BATCH]
        await stream.envelopes(chunk)
        last = chunk[-1].seq
        await asyncio.sleep(0)
    return last


async def relay(stream: EnvelopeStream, backlog: Backlog, cursor: int, idle_s: float | None = None) -> None:
    """:func:`replay` ``backlog``, then stream live envelopes until the subscription is closed
    (``idle_s`` without one, queued or written by the sink, calls :meth:`EnvelopeStream.idle`). Raises :class:`SlowConsumer`
    when the subscription was cut for it."""
    stream.last = await replay(stream, backlog, cursor)
    sub = stream.sub
    while True:
        direct = sub.direct
        env = await sub.get(timeout=idle_s, sink=stream.sink)
        if env is None:
            if sub.closed.is_set():
                if sub.reason == SLOW_CONSUMER:
                    raise SlowConsumer(sub.reason)
                return
            if sub.direct == direct:  # idle: nothing was written straight from the publisher either
                await stream.idle()
            continue
        batch = [e for e in [env, *sub.drain(WRITE_BATCH - 1)] if e.seq > stream.last]
        if batch:
            await stream.envelopes(batch)
            stream.last = batch[-1].seq
