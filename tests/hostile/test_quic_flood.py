"""Probe 3: a flood of QUIC Initials with random connection ids costs bounded state, and a real
WebTransport client still gets in (through a Retry once the flood has filled the free slots)."""

from __future__ import annotations

import asyncio
import socket

from aioquic.asyncio.protocol import QuicConnectionProtocol

from rtplay.clients.wt_conn import client_configuration, open_connection
from servers.runner import Server, ServerConfig
from tests.conftest import wait_until
from tests.hostile.conftest import HOST
from tests.hostile.quic_packets import initial_packet

FLOOD = 300
"""Initials sent: enough to exceed every bound by far, few enough for CI."""

STATE_BOUND = 64
"""No more half-open connections than this may exist, however many Initials came."""


class Sink:
    def on_stream_data(self, data: bytes, ended: bool) -> None: ...
    def on_datagram(self, data: bytes) -> None: ...
    def on_ping_stream_data(self, data: bytes, ended: bool) -> None: ...


async def test_an_initial_flood_costs_bounded_state_and_clients_still_connect() -> None:
    server = Server(ServerConfig(rate=0))
    await server.start()
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        quic = server.quic._server
        assert quic is not None
        for i in range(FLOOD):
            flood.sendto(initial_packet(), (HOST, server.quic_port))
            if i % 50 == 49:
                await asyncio.sleep(0.01)  # let the server read (the socket buffer is finite)
        await wait_until(lambda: quic.connections(QuicConnectionProtocol) or False, what="the flood to arrive")
        await asyncio.sleep(0.2)  # what is still queued in the socket is processed
        assert len(quic.connections(QuicConnectionProtocol)) <= STATE_BOUND
        configuration = client_configuration(server.cert.der, HOST, idle_timeout=5.0)
        async with asyncio.timeout(5):
            async with open_connection(HOST, server.quic_port, configuration, Sink()) as conn:
                assert await conn.open_session(f"{HOST}:{server.quic_port}", "/wt?since=0") == 200
    finally:
        flood.close()
        await server.stop()


def test_admission_retries_past_a_few_handshakes_and_bounds_retries_and_state() -> None:
    from servers.quic.udp import Admission, InitialVerdict

    admission = Admission(retry_above=2, maximum=4, retries_per_s=3)
    assert admission.decide(0, has_token=False, now=0.0) is InitialVerdict.ACCEPT
    assert admission.decide(2, has_token=False, now=0.0) is InitialVerdict.RETRY
    assert admission.decide(2, has_token=True, now=0.0) is InitialVerdict.RETRY  # its token is validated
    assert [admission.decide(3, False, 0.1) for _ in range(3)] == [InitialVerdict.RETRY, InitialVerdict.RETRY, InitialVerdict.DROP]
    assert admission.decide(3, has_token=False, now=1.2) is InitialVerdict.RETRY  # a new second, a new budget
    assert admission.decide(4, has_token=True, now=1.2) is InitialVerdict.DROP  # never past the maximum
    assert admission.dropped == 2
