"""One QUIC connection carrying one WebTransport session, for :mod:`rtplay.clients.wt`.

It speaks HTTP/3 with ``H3Connection(enable_webtransport=True)`` (draft-ietf-webtrans-http3-02,
the draft aioquic speaks), sends the extended CONNECT and hands what the server sends on the
session to a :class:`SessionSink`; it only moves bytes. It trusts only the server's own
certificate, the way a browser pins one with ``serverCertificateHashes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection, Setting
from aioquic.h3.events import (
    DatagramReceived,
    DataReceived,
    H3Event,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, stream_is_unidirectional
from aioquic.quic.events import (
    ConnectionTerminated,
    HandshakeCompleted,
    ProtocolNegotiated,
    QuicEvent,
    StreamReset,
)
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rtplay.clients.wt_ack import ACK_DELAY_S, AckDecimation
from rtplay.compat.aioquic import (
    ack_now,
    ack_state,
    handshake_complete,
    open_bidi_stream,
    peer_closed,
    rearm_timer,
    set_ack_delay,
)
from rtplay.protocol.envelope import ProtocolError
from rtplay.protocol.wt import parse_close_capsule

log = logging.getLogger(__name__)

#: Bytes of capsules kept from the CONNECT stream: a close capsule is at most ~1 KiB
#: (draft-ietf-webtrans-http3-02 §5 caps its message at 1024 bytes).
MAX_CAPSULE_BYTES = 2048

#: The DATAGRAM frames we accept (RFC 9221 §3); a datagram cannot outgrow a packet anyway.
MAX_DATAGRAM_FRAME_SIZE = 65536

STREAM_ENDED = "the server ended the stream"

T = TypeVar("T")


class SessionEnded(Exception):
    """The QUIC connection or the session ended; the message says why."""


# --- pure pieces ---------------------------------------------------------------------------


def describe_termination(event: ConnectionTerminated) -> str:
    reason = f": {event.reason_phrase}" if event.reason_phrase else ""
    return f"QUIC connection closed (0x{event.error_code:x}{reason})"


def response_status(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b":status" and value.isdigit():
            return int(value)
    raise ProtocolError("response without a valid :status")


def literal_address(host: str, port: int) -> tuple[socket.AddressFamily, tuple[str, int]] | None:
    """``host`` as an IP literal: its family and ``(address, port)``; None for a name.

    A literal needs no resolver: ``loop.getaddrinfo`` always goes through the executor's
    threads, a hop of 1-17 ms measured on a busy client as every transport reconnects at once,
    paid at each WebTransport reconnect before its first packet (a browser parses a literal).
    """
    try:
        ip = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    return (socket.AF_INET6 if ip.version == 6 else socket.AF_INET), (str(ip), port)


def pem_of(cert_der: bytes) -> bytes:
    """PEM of a DER certificate (aioquic's ``cadata`` takes PEM); ValueError when not one."""
    return x509.load_der_x509_certificate(cert_der).public_bytes(Encoding.PEM)


# --- one QUIC connection carrying one session ----------------------------------------------


class SessionSink(Protocol):
    """Where a connection hands what the server sends on the session."""

    def on_stream_data(self, data: bytes, ended: bool) -> None: ...

    def on_datagram(self, data: bytes) -> None: ...

    def on_ping_stream_data(self, data: bytes, ended: bool) -> None: ...


class _NetworkGate(asyncio.DatagramTransport):
    """The client's own network: while the ``offline`` fault holds, nothing leaves."""

    def __init__(self, inner: asyncio.DatagramTransport, offline: Callable[[], bool]) -> None:
        super().__init__()
        self._inner = inner
        self._offline = offline

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self._offline():
            self._inner.sendto(data, addr)

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)


class WebTransportProtocol(QuicConnectionProtocol):
    """A QUIC connection with HTTP/3 and at most one WebTransport session. Moves bytes only.

    ``offline`` is the client-side network fault: while it holds, every UDP datagram in or
    out is lost, so QUIC itself sees the blackout (and repairs the stream after it). What
    arrives is acknowledged by :class:`AckDecimation`, not after every datagram;
    ``decimate_acks=False`` leaves acknowledgement to aioquic alone (an ACK 1 ms after any
    packet), the baseline the decimation is measured against.
    """

    def __init__(
        self,
        quic: QuicConnection,
        sink: SessionSink | None = None,
        offline: Callable[[], bool] | None = None,
        decimate_acks: bool = True,
    ) -> None:
        super().__init__(quic)
        self.sink = sink
        self.offline = offline or (lambda: False)
        self.h3: H3Connection | None = None
        self.handshake_done = asyncio.Event()
        self.settings_received = asyncio.Event()
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.session_id: int | None = None
        self.status: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.ping_stream: int | None = None
        self._envelope_stream: int | None = None
        self._capsules = bytearray()
        self._acks = AckDecimation() if decimate_acks else None
        self._clock = asyncio.get_running_loop().time
        if decimate_acks:
            set_ack_delay(quic, ACK_DELAY_S)

    # --- what the client calls ----------------------------------------------------------

    async def open_session(self, authority: str, path: str) -> int:
        """Send the extended CONNECT for ``path``; the response status."""
        await self.until_ended(self.settings_received.wait())
        assert self.h3 is not None
        settings = self.h3.received_settings or {}
        # draft-ietf-webtrans-http3-02 §3.1: no session before the server's SETTINGS say yes.
        if settings.get(Setting.ENABLE_WEBTRANSPORT) != 1 or settings.get(Setting.H3_DATAGRAM) != 1:
            raise ProtocolError("the server does not offer WebTransport with datagrams")
        self.session_id = self._quic.get_next_available_stream_id()
        headers = [
            (b":method", b"CONNECT"),
            (b":scheme", b"https"),
            (b":authority", authority.encode()),
            (b":path", path.encode()),
            (b":protocol", b"webtransport"),
            (b"sec-webtransport-http3-draft02", b"1"),
        ]
        self.h3.send_headers(self.session_id, headers)
        self.transmit()
        return await self.until_ended(self.status)

    def send_ping(self, line: bytes) -> None:
        """Send a line on the ping stream, opening it on first use."""
        assert self.h3 is not None and self.session_id is not None
        if self.ping_stream is None:
            self.ping_stream = open_bidi_stream(self.h3, self.session_id)
        self._quic.send_stream_data(self.ping_stream, line)
        self.transmit()

    async def until_ended(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the connection ends first (then SessionEnded)."""
        waiter = asyncio.ensure_future(awaitable)
        ender = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({waiter, ender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ender.cancel()
            if not waiter.done():
                waiter.cancel()
        if waiter.done() and not waiter.cancelled():
            return waiter.result()
        raise SessionEnded(self.end_reason)

    def end(self, reason: str) -> None:
        """Mark the connection over (idempotent: the first reason wins)."""
        if not self.ended.is_set():
            self.end_reason = reason
            self.ended.set()

    def fail(self, reason: str) -> None:
        """The server broke the protocol: end, and close the connection saying why."""
        self.end(reason)
        self.close(error_code=ErrorCode.H3_GENERAL_PROTOCOL_ERROR, reason_phrase=reason[:200])

    # --- what the network calls ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        inner = cast(asyncio.DatagramTransport, transport)
        super().connection_made(_NetworkGate(inner, lambda: self.offline()))

    def datagram_received(self, data: bytes | str, addr: Any) -> None:
        """Like aioquic's, but a datagram that needs no answer yet only re-arms the timer:
        aioquic tries to send after every one, which mostly builds nothing."""
        if self.offline():
            return
        if self._acks is None:
            super().datagram_received(data, addr)
            self._check_peer_closed()
            return
        now = self._clock()
        owed, ranges = ack_state(self._quic)
        self._quic.receive_datagram(cast(bytes, data), addr, now=now)
        self._process_events()
        owes, ranges_now = ack_state(self._quic)
        if self._acks.on_datagram(owed, ranges_now > ranges, handshake_complete(self)):
            if owes:
                ack_now(self._quic, now)
            self.transmit()
        else:
            rearm_timer(self)
        self._check_peer_closed()

    def _check_peer_closed(self) -> None:
        """End as soon as the server's CONNECTION_CLOSE arrives, not after aioquic's draining
        period (see :func:`rtplay.compat.aioquic.peer_closed`)."""
        event = peer_closed(self._quic)
        if event is not None:
            self.end(describe_termination(event))

    def error_received(self, exc: Exception) -> None:
        """An ICMP error on our connected socket, e.g. port unreachable: nobody listens.

        Browsers do the same: Chromium closes a QUIC connection on a socket read error such
        as ECONNREFUSED instead of waiting for the idle timeout.
        """
        refused = isinstance(exc, ConnectionRefusedError)
        self.end("connection refused (ICMP port unreachable)" if refused else f"socket error: {exc}")

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated):
            self.h3 = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, HandshakeCompleted):
            self.handshake_done.set()
        elif isinstance(event, ConnectionTerminated):
            self.end(describe_termination(event))
        elif isinstance(event, StreamReset) and event.stream_id == self.session_id:
            self.end("the server reset the session")
        if self.h3 is None:
            return
        try:
            for h3_event in self.h3.handle_event(event):
                self._h3_event_received(h3_event)
        except ProtocolError as exc:
            self.fail(f"protocol error: {exc}")
        except Exception as exc:  # a bug must end this connection, not escape into the socket loop
            log.exception("wt: handling %r failed", event)
            self.fail(f"client error: {type(exc).__name__}: {exc}")
        if self.h3.received_settings is not None:
            self.settings_received.set()

    def _h3_event_received(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived) and event.stream_id == self.session_id:
            if not self.status.done():
                self.response_headers = event.headers
                self.status.set_result(response_status(event.headers))
            if event.stream_ended:
                self.end("the server ended the session")
        elif isinstance(event, DataReceived) and event.stream_id == self.session_id:
            self._capsules += event.data[: MAX_CAPSULE_BYTES - len(self._capsules)]
            if event.stream_ended:
                reason = parse_close_capsule(bytes(self._capsules))
                text = "the server closed the session" + (f": {reason}" if reason else "")
                if self.end_reason == STREAM_ENDED:  # the stream's FIN overtook the capsule saying why
                    self.end_reason = text
                self.end(text)
        elif isinstance(event, WebTransportStreamDataReceived) and event.session_id == self.session_id:
            self._stream_data_received(event)
        elif isinstance(event, DatagramReceived) and event.stream_id == self.session_id:
            if self.sink is not None:
                self.sink.on_datagram(event.data)

    def _stream_data_received(self, event: WebTransportStreamDataReceived) -> None:
        if event.stream_id == self.ping_stream:
            if self.sink is not None:
                self.sink.on_ping_stream_data(event.data, event.stream_ended)
            return
        # The envelopes come on the first server-opened uni stream; any other is ignored.
        if not stream_is_unidirectional(event.stream_id):
            return
        if self._envelope_stream not in (None, event.stream_id):
            return
        self._envelope_stream = event.stream_id
        if self.sink is not None:
            self.sink.on_stream_data(event.data, event.stream_ended)
        if event.stream_ended:
            self.end(STREAM_ENDED)


@contextlib.asynccontextmanager
async def open_connection(
    host: str,
    port: int,
    configuration: QuicConfiguration,
    sink: SessionSink | None = None,
    offline: Callable[[], bool] | None = None,
    decimate_acks: bool = True,
) -> AsyncIterator[WebTransportProtocol]:
    """A QUIC connection to ``host:port``, closed on exit (``decimate_acks``: see
    :class:`WebTransportProtocol`).

    Like ``aioquic.asyncio.connect`` but on a *connected* UDP socket: the kernel picks the
    local address (127.0.0.1 for a loopback server, instead of aioquic's ``[::]`` bind on
    every interface) and reports ICMP errors, so a down server is "connection refused".
    """
    loop = asyncio.get_running_loop()
    literal = literal_address(host, port)
    if literal is not None:
        family, addr = literal
    else:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        family, addr = infos[0][0], (str(infos[0][4][0]), int(infos[0][4][1]))
    quic = QuicConnection(configuration=configuration)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: WebTransportProtocol(quic, sink, offline, decimate_acks), remote_addr=addr, family=family
    )
    assert isinstance(protocol, WebTransportProtocol)
    try:
        protocol.connect(addr)
        await protocol.until_ended(protocol.handshake_done.wait())
        yield protocol
    finally:
        protocol.sink = None
        protocol.close()  # CONNECTION_CLOSE leaves now; the draining period is not waited for
        transport.close()


def client_configuration(cert_der: bytes, server_name: str, idle_timeout: float) -> QuicConfiguration:
    """HTTP/3 with datagrams, trusting ``cert_der`` and nothing else."""
    configuration = QuicConfiguration(
        is_client=True,
        alpn_protocols=H3_ALPN,
        max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
        idle_timeout=idle_timeout,
        server_name=server_name,
    )
    configuration.load_verify_locations(cadata=pem_of(cert_der))
    return configuration

