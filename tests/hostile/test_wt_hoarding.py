"""Item 6: a WebTransport client that never grants flow-control credit cannot make the server hoard.

Two connections of 8 sessions each, from a client that keeps the tiny windows it announced
(:mod:`tests.hostile.wt_hoarder`), while ~1 KB envelopes are published and a healthy
WebTransport client reads alongside. What the server holds for each connection stays under
its bound, the hoarding sessions are closed once their bytes have waited ``STUCK_S`` for
credit, what they held is released, and the healthy client receives every envelope. A
hoarder whose whole window went on envelopes cannot even take the close capsules: its
connection is closed.
Messages are published by hand (rate 0); the reaper's clock is shortened to keep it quick.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest
from aioquic.h3.connection import ErrorCode

from rtplay.clients.wt import STREAM
from rtplay.model.events import State
from servers.core.cert import Certificate
from servers.quic.budget import MAX_CONNECTION_BUFFERED_BYTES
from servers.quic.server import MAX_SESSIONS_PER_CONNECTION, QuicListener
from servers.runner import Server, ServerConfig
from tests.conftest import running, wait_until
from tests.hostile.conftest import HOST
from tests.hostile.wt_hoarder import hoarding
from tests.servers.test_quic import fast_client

HOARDERS = 2
SESSIONS = HOARDERS * MAX_SESSIONS_PER_CONNECTION
STUCK_S = 0.5
"""The listener's ``stuck_after_s`` here (5 s in the product)."""
PUBLISHED = 400
"""~400 KB per session: past the session bound, and 8 sessions' worth is far past the
connection's (the old server held all of it, 3.2 MB a connection)."""


@pytest.fixture
async def reaping_listener(cert: Certificate) -> AsyncIterator[QuicListener]:
    """A server publishing ~1 KB envelopes by hand, and a QUIC listener reaping after STUCK_S."""
    srv = Server(ServerConfig(rate=0, payload_size=1000))
    await srv.start()
    quic = QuicListener(srv.ctx, HOST, 0, cert, stuck_after_s=STUCK_S)
    await quic.start()
    try:
        yield quic
    finally:
        await quic.stop()
        await srv.stop()


async def test_hoarding_sessions_are_bounded_then_closed_while_a_healthy_client_reads(
    cert: Certificate, reaping_listener: QuicListener
) -> None:
    srv, quic = reaping_listener.ctx, reaping_listener
    peak = 0

    def held(limit: int) -> bool:
        nonlocal peak
        peak = max(peak, *quic.buffered(), 0)
        return sum(quic.buffered()) <= limit

    async with running(fast_client(quic.port, cert)) as healthy, contextlib.AsyncExitStack() as stack:
        await wait_until(lambda: healthy.state is State.OPEN, 5, "the healthy session")
        hoarders = [await stack.enter_async_context(hoarding(HOST, quic.port, MAX_SESSIONS_PER_CONNECTION))
                    for _ in range(HOARDERS)]
        await wait_until(lambda: srv.registry.count("wt") == 1 + SESSIONS, 5, "every session open")
        for _ in range(PUBLISHED):
            srv.broadcaster.publish()
        # A session's bytes are released (its stream reset) a moment before the session itself
        # has ended and left the registry: wait for both, as for the healthy client's last one.
        await wait_until(
            lambda: held(0) and srv.registry.count("wt") == 1 and healthy.stats[STREAM].tracker.highest == PUBLISHED,
            10, "the healthy client to have everything, the hoarders' bytes released and every hoarding session closed",
        )
        assert peak <= MAX_CONNECTION_BUFFERED_BYTES
        assert all(len(h.ended) == len(h.statuses) == MAX_SESSIONS_PER_CONNECTION for h in hoarders), [
            h.ended for h in hoarders]
        assert healthy.stats[STREAM].lost(PUBLISHED) == 0 and healthy.conn.connects == 1
        for _ in range(10):  # and it goes on
            srv.broadcaster.publish()
        await wait_until(lambda: healthy.stats[STREAM].tracker.highest == PUBLISHED + 10, 5, "ten more")


async def test_a_connection_whose_bytes_still_wait_after_its_sessions_closed_is_closed(
    cert: Certificate, reaping_listener: QuicListener
) -> None:
    """With its whole window spent on envelopes, not even the close capsules reach the hoarder:
    its connection is closed (H3_EXCESSIVE_LOAD), which releases what they held."""
    srv, quic = reaping_listener.ctx, reaping_listener
    async with hoarding(HOST, quic.port, MAX_SESSIONS_PER_CONNECTION, connection_window=4096) as hoarder:
        await wait_until(lambda: srv.registry.count("wt") == MAX_SESSIONS_PER_CONNECTION, 5, "the sessions open")
        for _ in range(20):
            srv.broadcaster.publish()
        await wait_until(lambda: hoarder.closed_with is not None, 10, "the server to close the connection")
        assert hoarder.closed_with is not None
        assert hoarder.closed_with.error_code == ErrorCode.H3_EXCESSIVE_LOAD
        assert "peer not reading" in hoarder.closed_with.reason_phrase
        assert srv.registry.count("wt") == 0
    await wait_until(lambda: quic.buffered() == [], 5, "the connection gone")
