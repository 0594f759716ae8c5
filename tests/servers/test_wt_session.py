"""One WebTransport session's sender on its own: a server-side :class:`WtSession` over an
in-memory QUIC pair (no sockets), driven through the narrow :class:`SessionPort`. What the
client receives — the backlog after its cursor, live envelopes on the stream and as
datagrams, pongs — and how the session ends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass, field
from typing import Any

import pytest
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DatagramReceived, DataReceived, H3Event, WebTransportStreamDataReceived
from aioquic.quic.connection import QuicConnection, stream_is_unidirectional

from rtplay.compat.aioquic import open_bidi_stream
from rtplay.protocol.envelope import make_envelope
from rtplay.protocol.faults import Kind
from servers.core.cert import Certificate
from servers.core.context import ServerContext
from servers.core.hub import Hub
from servers.core.pubsub import Broadcaster
from servers.quic.budget import MAX_PONG_BUFFERED_BYTES
from servers.quic.wt_session import DROPPED, MAX_PING_STREAMS, TRANSPORT, WtSession, held
from tests.compat.quic_pair import Pair, deliver, h3_session, joined


class Port:
    """The server connection's side of a session: the QUIC state, the context, and a record
    of what the session asked of its connection."""

    def __init__(self, pair: Pair, ctx: ServerContext) -> None:
        self.quic: QuicConnection = pair.server
        self.ctx = ctx
        self.progress = asyncio.Event()
        self.aborted: list[str] = []
        self.forgotten: list[int] = []
        self.not_reading = 0
        """How often a session said its peer left bytes stuck."""
        self.sent = asyncio.Event()

    def abort(self, reason: str = DROPPED) -> None:
        self.aborted.append(reason)

    def forget(self, session_id: int) -> None:
        self.forgotten.append(session_id)

    def transmit(self) -> None:
        self.sent.set()

    def peer_not_reading(self) -> None:
        self.not_reading += 1


@dataclass
class Rig:
    pair: Pair
    client: H3Connection
    server: H3Connection
    session_id: int
    port: Port
    session: WtSession
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    received: list[H3Event] = field(default_factory=list)

    async def sent(self) -> None:
        """Wait for the session's next transmit, then deliver it to the client."""
        await asyncio.wait_for(self.port.sent.wait(), 10)
        self.port.sent.clear()
        self.deliver()

    def deliver(self) -> None:
        self.received += deliver(self.pair.to_client, self.pair.client, self.client)

    def stream_lines(self) -> list[dict[str, Any]]:
        data = b"".join(
            e.data for e in self.received
            if isinstance(e, WebTransportStreamDataReceived) and stream_is_unidirectional(e.stream_id)
        )
        return [json.loads(line) for line in data.splitlines()]

    def datagrams(self) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.received if isinstance(e, DatagramReceived)]


def ctx_with_backlog(count: int) -> ServerContext:
    broadcaster = Broadcaster(Hub())
    for n in range(count):
        broadcaster.publish(1_000_000.0 + n)
    return ServerContext(broadcaster, clock=lambda: 10.0)


async def make_rig(cert: Certificate, ctx: ServerContext, since: int) -> Rig:
    pair = joined(cert)
    client, server_h3, session_id = h3_session(pair)
    port = Port(pair, ctx)
    rig = Rig(pair, client, server_h3, session_id, port, WtSession(port, server_h3, session_id, since))

    def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro)
        rig.tasks.append(task)
        return task

    rig.session.start(spawn)
    return rig


@pytest.fixture
async def rig(cert: Certificate) -> AsyncIterator[Rig]:
    rig = await make_rig(cert, ctx_with_backlog(3), since=1)
    try:
        await rig.sent()
        yield rig
    finally:
        rig.session.end()
        await asyncio.gather(*rig.tasks, return_exceptions=True)


def test_a_fault_holds_an_envelope_until_its_own_time() -> None:
    ctx = ctx_with_backlog(0)
    env = make_envelope(1, 100_000.0, "x")  # sent at 100 s (wall clock, ms)
    assert not held(ctx, env, now_s=100.5)
    ctx.faults.add(Kind.DELAY, TRANSPORT, 2000, now=10.0)
    assert held(ctx, env, now_s=101.9)
    assert not held(ctx, env, now_s=102.1)
    ctx.faults.clear()
    ctx.faults.add(Kind.DELAY, "ws", 2000, now=10.0)  # another transport's delay
    assert not held(ctx, env, now_s=100.5)
    ctx.faults.add(Kind.STALL, TRANSPORT, now=10.0)
    assert held(ctx, env, now_s=1e9)  # a stall holds whatever the time


async def test_the_client_gets_where_live_starts_then_the_backlog_after_its_cursor(rig: Rig) -> None:
    lines = rig.stream_lines()
    assert lines[0] == {"live": 4}
    assert [line["seq"] for line in lines[1:]] == [2, 3]
    assert rig.datagrams() == []  # the backlog is only on the stream
    assert rig.port.ctx.registry.count(TRANSPORT) == 1


async def test_a_live_envelope_goes_on_the_stream_and_as_a_datagram(rig: Rig) -> None:
    env = rig.port.ctx.broadcaster.publish()
    await rig.sent()
    assert rig.stream_lines()[-1] == json.loads(env.json)
    assert rig.datagrams() == [json.loads(env.json)]


async def test_a_cursor_older_than_the_buffer_gets_a_reset_first(cert: Certificate) -> None:
    broadcaster = Broadcaster(Hub(capacity=2))
    for n in range(5):
        broadcaster.publish(1_000_000.0 + n)
    rig = await make_rig(cert, ServerContext(broadcaster, clock=lambda: 10.0), since=0)
    try:
        await rig.sent()
        lines = rig.stream_lines()
        assert "reset" in lines[0] and lines[1] == {"live": 6}
        assert [line["seq"] for line in lines[2:]] == [4, 5]
    finally:
        rig.session.end()
        await asyncio.gather(*rig.tasks, return_exceptions=True)


def ping(rig: Rig, stream_id: int, line: bytes) -> None:
    """Send ``line`` on the client's bidi stream and hand it to the session as the server's
    connection would."""
    rig.pair.client.send_stream_data(stream_id, line)
    rig.pair.now += 0.03  # past aioquic's pacing and ACK delay
    rig.pair.to_server()
    while (event := rig.pair.server.next_event()) is not None:
        for h3_event in rig.server.handle_event(event):
            if isinstance(h3_event, WebTransportStreamDataReceived):
                rig.session.stream_data(h3_event.stream_id, h3_event.data, h3_event.stream_ended)
    rig.deliver()


def bidi_data(rig: Rig, stream_id: int) -> bytes:
    return b"".join(e.data for e in rig.received if isinstance(e, WebTransportStreamDataReceived) and e.stream_id == stream_id)


async def test_each_ping_line_is_answered_on_its_stream_unless_the_server_is_stalled(rig: Rig) -> None:
    stream = open_bidi_stream(rig.client, rig.session_id)
    ping(rig, stream, b'{"ping": 5}\n{"ping": 6.5}\n')
    assert bidi_data(rig, stream) == b'{"pong": 5}\n{"pong": 6.5}\n'
    ping(rig, stream, b'{"pi')  # half a line waits for its end
    ping(rig, stream, b'ng": 7}\n')
    assert bidi_data(rig, stream).endswith(b'{"pong": 7}\n')
    rig.port.ctx.faults.add(Kind.STALL, TRANSPORT, now=10.0)
    ping(rig, stream, b'{"ping": 8}\n')
    assert b"8" not in bidi_data(rig, stream)  # a stalled server answers nothing
    assert not rig.session.closed


async def test_a_bad_ping_line_closes_the_session_with_the_reason(rig: Rig) -> None:
    stream = open_bidi_stream(rig.client, rig.session_id)
    ping(rig, stream, b'{"ping": "soon"}\n')
    assert rig.session.closed
    told = b"".join(e.data for e in rig.received if isinstance(e, DataReceived) and e.stream_id == rig.session_id)
    assert b'expected {"ping": <number>}' in told  # the close capsule carries the reason
    await asyncio.gather(*rig.tasks, return_exceptions=True)
    assert rig.port.forgotten == [rig.session_id]
    assert rig.port.ctx.registry.count(TRANSPORT) == 0
    assert rig.port.ctx.broadcaster.subscriber_count == 0


async def test_too_many_ping_streams_close_the_session(rig: Rig) -> None:
    for _ in range(MAX_PING_STREAMS):
        ping(rig, open_bidi_stream(rig.client, rig.session_id), b'{"ping": 1}\n')
    assert not rig.session.closed
    ping(rig, open_bidi_stream(rig.client, rig.session_id), b'{"ping": 1}\n')
    assert rig.session.closed


async def test_a_drop_fault_aborts_the_sessions_connection(rig: Rig) -> None:
    assert rig.port.ctx.registry.drop(TRANSPORT) == 1
    assert rig.port.aborted == [DROPPED]


async def test_a_subscription_cut_for_slowness_closes_the_session_and_cleans_up(cert: Certificate) -> None:
    ctx = ServerContext(Broadcaster(Hub(), queue_size=2), clock=lambda: 10.0)
    rig = await make_rig(cert, ctx, since=0)
    try:
        for _ in range(100):  # let the session's task subscribe (its first step)
            if ctx.broadcaster.subscriber_count:
                break
            await asyncio.sleep(0)
        assert ctx.broadcaster.subscriber_count == 1
        for _ in range(3):  # more than its queue holds before the session runs again
            ctx.broadcaster.publish()
        await asyncio.gather(*rig.tasks, return_exceptions=True)
        assert rig.session.closed
        assert rig.port.forgotten == [rig.session_id]
        assert ctx.registry.count(TRANSPORT) == 0 and ctx.broadcaster.subscriber_count == 0
        rig.deliver()
        told = b"".join(e.data for e in rig.received if isinstance(e, DataReceived) and e.stream_id == rig.session_id)
        assert ctx.broadcaster.slow_cuts == 1 and b"slow" in told  # the client is told why
    finally:
        rig.session.end()
        await asyncio.gather(*rig.tasks, return_exceptions=True)


async def test_a_client_that_pings_and_never_reads_its_pongs_is_closed(rig: Rig) -> None:
    stream = open_bidi_stream(rig.client, rig.session_id)
    pings = b'{"ping": 1}\n' * 500
    assert len(pings) > MAX_PONG_BUFFERED_BYTES  # as many bytes of pongs
    for start in range(0, len(pings), 1200):  # sent, but nothing the server answers is delivered
        rig.pair.client.send_stream_data(stream, pings[start : start + 1200])
        rig.pair.now += 0.03
        rig.pair.to_server()
        while (event := rig.pair.server.next_event()) is not None:
            for h3_event in rig.server.handle_event(event):
                if isinstance(h3_event, WebTransportStreamDataReceived):
                    rig.session.stream_data(h3_event.stream_id, h3_event.data, h3_event.stream_ended)
    assert rig.session.closed
    assert len(bidi_data(rig, stream)) == 0
    rig.deliver()
    told = b"".join(e.data for e in rig.received if isinstance(e, DataReceived) and e.stream_id == rig.session_id)
    assert b"not reading its pongs" in told
