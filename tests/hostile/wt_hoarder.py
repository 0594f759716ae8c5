"""A WebTransport client that hoards: it opens sessions and never grants flow-control credit.

QUIC flow control (RFC 9000 §4.1) lets a receiver say how many bytes it will take: on each
stream (MAX_STREAM_DATA) and on the whole connection (MAX_DATA). aioquic raises both as data
arrives; this client keeps the small ones its transport parameters announced, so whatever the
server writes beyond them waits in the server's send buffers. It still acknowledges packets
(QUIC does that below the application), so its connection looks alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived, WebTransportStreamDataReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, stream_is_unidirectional
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, QuicEvent, StreamReset

#: The credit this client grants, once: a few lines of envelopes per stream.
STREAM_WINDOW = 1024
CONNECTION_WINDOW = 16 * 1024


class MiserlyConnection(QuicConnection):
    """A QUIC connection that never raises MAX_DATA or MAX_STREAM_DATA (nor MAX_STREAMS)."""

    def _write_connection_limits(self, builder: Any, space: Any) -> None:
        return

    def _write_stream_limits(self, builder: Any, space: Any, stream: Any) -> None:
        return


class Hoarder(QuicConnectionProtocol):
    """Opens sessions on one connection; notes how the server ended each."""

    def __init__(self, quic: QuicConnection) -> None:
        super().__init__(quic)
        self.h3: H3Connection | None = None
        self.settings = asyncio.Event()
        self.statuses: dict[int, int] = {}
        """CONNECT stream id → response status."""
        self.ended: dict[int, str] = {}
        """CONNECT stream id → how the server ended that session."""
        self.streams: dict[int, int] = {}
        """Server-opened envelope stream id → its session."""
        self.received = 0
        """Stream bytes received on every session together."""
        self.closed_with: ConnectionTerminated | None = None
        """How the connection ended, once it has."""

    def open_session(self, authority: str) -> int:
        assert self.h3 is not None
        session_id = self._quic.get_next_available_stream_id()
        self.h3.send_headers(session_id, [
            (b":method", b"CONNECT"), (b":scheme", b"https"), (b":authority", authority.encode()),
            (b":path", b"/wt?since=0"), (b":protocol", b"webtransport"),
        ])
        self.transmit()
        return session_id

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, ConnectionTerminated):
            self.closed_with = event
            for session_id in self.statuses:
                self.ended.setdefault(session_id, f"connection closed: {event.reason_phrase}")
        elif isinstance(event, StreamReset) and event.stream_id in self.streams:
            self.ended.setdefault(self.streams[event.stream_id], "envelope stream reset")
        if self.h3 is None:
            return
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)
        if self.h3.received_settings is not None:
            self.settings.set()

    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            self.statuses[event.stream_id] = int(dict(event.headers)[b":status"])
        elif isinstance(event, DataReceived) and event.stream_ended:
            self.ended.setdefault(event.stream_id, "session closed")
        elif isinstance(event, WebTransportStreamDataReceived) and stream_is_unidirectional(event.stream_id):
            self.streams[event.stream_id] = event.session_id
            self.received += len(event.data)


@contextlib.asynccontextmanager
async def hoarding(
    host: str, port: int, sessions: int, connection_window: int = CONNECTION_WINDOW
) -> AsyncIterator[Hoarder]:
    """One hoarding connection to ``host:port`` with ``sessions`` sessions asked for, granting
    :data:`STREAM_WINDOW` per stream and ``connection_window`` in all."""
    configuration = QuicConfiguration(
        is_client=True, alpn_protocols=H3_ALPN, max_datagram_frame_size=65536, idle_timeout=30.0,
        max_data=connection_window, max_stream_data=STREAM_WINDOW,
    )
    configuration.verify_mode = ssl.CERT_NONE  # an attacker trusts anything
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: Hoarder(MiserlyConnection(configuration=configuration)), remote_addr=(host, port)
    )
    assert isinstance(protocol, Hoarder)
    try:
        protocol.connect((host, port))
        async with asyncio.timeout(5):
            await protocol.wait_connected()
            await protocol.settings.wait()
        for _ in range(sessions):
            protocol.open_session(f"{host}:{port}")
        yield protocol
    finally:
        protocol.close()
        transport.close()
