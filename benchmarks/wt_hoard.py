"""The WebTransport hoarding probe of ``benchmarks/hostile.py``: clients that never grant credit.

Each connection opens sessions and keeps the small flow-control windows its transport
parameters announced (RFC 9000 §4.1: it never sends MAX_DATA or MAX_STREAM_DATA), so what
the server writes beyond them waits in the server's send buffers. It still acknowledges
packets (QUIC does that below the application), so it looks alive. tests/hostile/wt_hoarder.py
has the same client for the test suite; this script imports nothing of the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, stream_is_unidirectional
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, QuicEvent, StreamReset

HOST = "127.0.0.1"
CONNECTIONS = 40
SESSIONS = 8
"""The issue's figures: 40 connections x 8 sessions."""
STREAM_WINDOW = 1024
CONNECTION_WINDOW = 16 * 1024
"""The credit each hoarding connection grants, once."""


class _Miserly(QuicConnection):
    def _write_connection_limits(self, builder: Any, space: Any) -> None:
        return

    def _write_stream_limits(self, builder: Any, space: Any, stream: Any) -> None:
        return


class _Hoarder(QuicConnectionProtocol):
    def __init__(self, quic: QuicConnection) -> None:
        super().__init__(quic)
        self.h3: H3Connection | None = None
        self.settings = asyncio.Event()
        self.accepted: set[int] = set()
        self.ended: dict[int, str] = {}
        self.streams: dict[int, int] = {}
        self.terminated = False

    def open_sessions(self, authority: str, count: int) -> None:
        assert self.h3 is not None
        for _ in range(count):
            self.h3.send_headers(self._quic.get_next_available_stream_id(), [
                (b":method", b"CONNECT"), (b":scheme", b"https"), (b":authority", authority.encode()),
                (b":path", b"/wt?since=0"), (b":protocol", b"webtransport"),
            ])
        self.transmit()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, ConnectionTerminated):
            self.terminated = True
            for session_id in self.accepted:
                self.ended.setdefault(session_id, "connection")
        elif isinstance(event, StreamReset) and event.stream_id in self.streams:
            self.ended.setdefault(self.streams[event.stream_id], "reset")
        if self.h3 is None:
            return
        for h3_event in self.h3.handle_event(event):
            if isinstance(h3_event, HeadersReceived) and dict(h3_event.headers).get(b":status") == b"200":
                self.accepted.add(h3_event.stream_id)
            elif isinstance(h3_event, DataReceived) and h3_event.stream_ended:
                self.ended.setdefault(h3_event.stream_id, "capsule")
            elif isinstance(h3_event, WebTransportStreamDataReceived) and stream_is_unidirectional(h3_event.stream_id):
                self.streams[h3_event.stream_id] = h3_event.session_id
        if self.h3.received_settings is not None:
            self.settings.set()


async def _connect(port: int, stack: contextlib.AsyncExitStack) -> _Hoarder:
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536, idle_timeout=60.0,
        max_data=CONNECTION_WINDOW, max_stream_data=STREAM_WINDOW,
    )
    configuration.verify_mode = ssl.CERT_NONE
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Hoarder(_Miserly(configuration=configuration)), remote_addr=(HOST, port)
    )
    stack.callback(transport.close)
    stack.callback(protocol.close)
    assert isinstance(protocol, _Hoarder)
    protocol.connect((HOST, port))
    async with asyncio.timeout(10):
        await protocol.wait_connected()
        await protocol.settings.wait()
    protocol.open_sessions(f"{HOST}:{port}", SESSIONS)
    return protocol


async def wt_hoard(quic_port: int, hold_s: float) -> str:
    """Hold :data:`CONNECTIONS` x :data:`SESSIONS` hoarding sessions for ``hold_s``; what became of them."""
    async with contextlib.AsyncExitStack() as stack:
        hoarders = await asyncio.gather(*(_connect(quic_port, stack) for _ in range(CONNECTIONS)))
        await asyncio.sleep(hold_s)
        accepted = sum(len(h.accepted) for h in hoarders)
        ended = [how for h in hoarders for how in h.ended.values()]
        terminated = sum(h.terminated for h in hoarders)
    kinds = ", ".join(f"{ended.count(k)} by {k}" for k in ("reset", "capsule", "connection") if ended.count(k))
    return (f"{len(ended)}/{accepted} sessions closed by the server ({kinds or 'none'}), "
            f"{terminated}/{CONNECTIONS} connections")
