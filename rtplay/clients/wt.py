"""WebTransport over HTTP/3: one session, a reliable resumable stream and unreliable datagrams.

aioquic ships no WebTransport client, so this is one built on ``H3Connection(
enable_webtransport=True)``: it sends the extended CONNECT ``/wt?since=N`` (draft-ietf-
webtrans-http3-02, the draft aioquic speaks), reads newline-delimited envelopes from the
server's unidirectional stream (channel ``stream``) and envelopes from datagrams (channel
``datagram``), and pings on a bidirectional stream it opens. It trusts only the server's own
certificate, the way a browser pins one with ``serverCertificateHashes``.

A session that dies (connection closed, refused, idle, or a ping left unanswered) is
reopened with exponential backoff; the stream resumes from its cursor, the datagrams simply
start again. Datagram losses count on that channel only, and only for envelopes the server
sent as datagrams: the stream's ``{"live": L}`` line says where this session's datagrams
begin, so what was published while the client was away is not a datagram loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.buffer import Buffer, BufferReadError
from aioquic.h3.connection import H3_ALPN, ErrorCode, FrameType, H3Connection, H3Stream, Setting
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

from rtplay.clients.base import Client, Emit, ProtocolError, Received, decode_json, parse_envelope
from rtplay.retry import Backoff, ExponentialBackoff, Heartbeat

log = logging.getLogger(__name__)

STREAM = "stream"
DATAGRAM = "datagram"

#: Ping every 5 s; a server silent 5 s after a ping is presumed dead (as the ws client).
DEFAULT_PING_INTERVAL_S = 5.0
DEFAULT_PING_TIMEOUT_S = 5.0

#: QUIC handshake plus the CONNECT response. Loopback answers in milliseconds; 3 s also
#: covers the first handshake retransmissions (aioquic's initial RTT guess is 100 ms).
DEFAULT_CONNECT_TIMEOUT_S = 3.0

#: QUIC idle timeout (RFC 9000 §10.1): the backstop when pings cannot get through at all.
#: Longer than the ping interval, so a live but quiet session never idles out.
DEFAULT_IDLE_TIMEOUT_S = 10.0

#: Longest line accepted on the stream: an envelope is ~100 bytes.
MAX_LINE_BYTES = 64 * 1024

#: Bytes of capsules kept from the CONNECT stream: a close capsule is at most ~1 KiB
#: (draft-ietf-webtrans-http3-02 §5 caps its message at 1024 bytes).
MAX_CAPSULE_BYTES = 2048

#: The DATAGRAM frames we accept (RFC 9221 §3); a datagram cannot outgrow a packet anyway.
MAX_DATAGRAM_FRAME_SIZE = 65536

#: Framing a datagram adds to its payload: DATAGRAM frame type and length varints and the
#: quarter stream id (RFC 9297 §2.1). Packet headers are shared between frames, not counted.
DATAGRAM_OVERHEAD_BYTES = 4

#: Datagrams held until the stream's ``{"live": L}`` line arrives (a datagram may overtake
#: the stream). Beyond this many they are accounted at once; at 2000 msg/s this is half a
#: second of traffic (the same bound as the WebRTC client's unreliable channel).
MAX_EARLY_DATAGRAMS = 1024

#: draft-ietf-webtrans-http3-02 §5: the capsule that closes a session with a reason.
CLOSE_WEBTRANSPORT_SESSION = 0x2843

STREAM_ENDED = "the server ended the stream"

T = TypeVar("T")


class HeartbeatTimeout(Exception):
    pass


class SessionEnded(Exception):
    """The QUIC connection or the session ended; the message says why."""


# --- pure pieces ---------------------------------------------------------------------------


class LineBuffer:
    """Splits a byte stream into newline-terminated lines, refusing lines over ``limit``."""

    def __init__(self, limit: int = MAX_LINE_BYTES) -> None:
        self.limit = limit
        self._partial = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The complete non-empty lines ``data`` finishes; ProtocolError on an overlong line."""
        self._partial += data
        if b"\n" not in data:
            lines: list[bytes] = []
        else:
            *lines, rest = self._partial.split(b"\n")
            self._partial = bytearray(rest)
        if len(self._partial) > self.limit:
            raise ProtocolError(f"line longer than {self.limit} bytes")
        return [bytes(line) for line in lines if line]


def parse_close_capsule(data: bytes) -> str | None:
    """The reason in a CLOSE_WEBTRANSPORT_SESSION capsule among ``data``, if one is complete."""
    buf = Buffer(data=data)
    while not buf.eof():
        try:
            kind, length = buf.pull_uint_var(), buf.pull_uint_var()
            value = buf.pull_bytes(length)
        except BufferReadError:
            return None
        if kind == CLOSE_WEBTRANSPORT_SESSION and length >= 4:
            code = int.from_bytes(value[:4], "big")
            message = value[4:].decode("utf-8", "replace")
            return f"{message} (code {code})" if message else f"code {code}"
    return None


def describe_termination(event: ConnectionTerminated) -> str:
    reason = f": {event.reason_phrase}" if event.reason_phrase else ""
    return f"QUIC connection closed (0x{event.error_code:x}{reason})"


def response_status(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b":status" and value.isdigit():
            return int(value)
    raise ProtocolError("response without a valid :status")


def pem_of(cert_der: bytes) -> bytes:
    """PEM of a DER certificate (aioquic's ``cadata`` takes PEM); ValueError when not one."""
    return x509.load_der_x509_certificate(cert_der).public_bytes(Encoding.PEM)


# --- aioquic workaround --------------------------------------------------------------------


def open_bidi_stream(h3: H3Connection, session_id: int) -> int:
    """Open a bidirectional WebTransport stream and return its id.

    aioquic workaround (1.7.2): ``create_webtransport_stream`` writes the WEBTRANSPORT_STREAM
    signal but does not record the stream as a WebTransport stream on our side, so the peer's
    answers on it are parsed as HTTP/3 frames: our pong lines vanish as unknown frame types
    (RFC 9114 §9), other bytes could fail the connection. Record it the way aioquic records a
    peer-opened one (frame type + session id), so answers arrive as
    WebTransportStreamDataReceived.
    """
    stream_id = h3.create_webtransport_stream(session_id, is_unidirectional=False)
    stream = h3._stream.setdefault(stream_id, H3Stream(stream_id))
    stream.frame_type = FrameType.WEBTRANSPORT_STREAM
    stream.session_id = session_id
    return stream_id


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
    out is lost, so QUIC itself sees the blackout (and repairs the stream after it).
    """

    def __init__(
        self,
        quic: QuicConnection,
        sink: SessionSink | None = None,
        offline: Callable[[], bool] | None = None,
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
        if not self.offline():
            super().datagram_received(data, addr)

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
) -> AsyncIterator[WebTransportProtocol]:
    """A QUIC connection to ``host:port``, closed on exit.

    Like ``aioquic.asyncio.connect`` but on a *connected* UDP socket: the kernel picks the
    local address (127.0.0.1 for a loopback server, instead of aioquic's ``[::]`` bind on
    every interface) and reports ICMP errors, so a down server is "connection refused".
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    family, addr = infos[0][0], infos[0][4]
    quic = QuicConnection(configuration=configuration)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: WebTransportProtocol(quic, sink, offline), remote_addr=addr, family=family
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


# --- the client ----------------------------------------------------------------------------


class WebTransportClient(Client):
    """Reads envelopes from ``CONNECT /wt?since=N`` on a stream and as datagrams."""

    name = "wt"
    channels = (STREAM, DATAGRAM)

    def __init__(
        self,
        host: str,
        port: int,
        cert_der: bytes,
        emit: Emit | None = None,
        *,
        retry: Backoff | None = None,
        ping_interval: float = DEFAULT_PING_INTERVAL_S,
        ping_timeout: float = DEFAULT_PING_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
        **kw: bool,
    ) -> None:
        self.host = host
        self.port = port
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(f"https://{self.authority}", emit, **kw)
        self.cert_der = cert_der
        self.idle_timeout = idle_timeout
        self.configuration: QuicConfiguration | None = None
        """Built from ``cert_der`` when :meth:`run` starts."""
        self.retry = retry or ExponentialBackoff()
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.rtt_ms: float | None = None
        """The last measured round-trip time on the ping stream."""
        self._heartbeat: Heartbeat | None = None
        self._lines = LineBuffer()
        self._pongs = LineBuffer()
        self._live_from: int | None = None
        """This session's first datagram seq, once the stream said (``{"live": L}``)."""
        self._early: list[tuple[Received, float]] = []

    @property
    def cursor(self) -> int:
        """Only the stream resumes; datagrams are never replayed."""
        return self.stats[STREAM].tracker.highest

    @property
    def path(self) -> str:
        return f"/wt?since={self.cursor}"

    async def run(self) -> None:
        try:
            self.configuration = client_configuration(self.cert_der, self.host, self.idle_timeout)
        except ValueError as exc:  # like a browser given a bad serverCertificateHashes entry
            self._failed(f"no usable server certificate to trust: {exc}")
            return
        while True:
            self._connecting()
            try:
                reason = await self.session_once()
            except (ProtocolError, SessionEnded, HeartbeatTimeout, ConnectionError, OSError) as exc:
                reason = str(exc) or type(exc).__name__
            self._heartbeat = None
            self._disconnected(reason)
            await self._wait_retry(self.retry.next_delay(), self.retry.describe())

    async def session_once(self) -> str:
        """One connection and session: returns (or raises) why it ended."""
        assert self.configuration is not None, "run() builds the configuration"
        self._lines, self._pongs = LineBuffer(), LineBuffer()  # no partial line crosses sessions
        self._live_from, self._early = None, []
        since, path = self.cursor, self.path
        self.check_online()
        connection = open_connection(
            self.host, self.port, self.configuration, self, offline=lambda: self.is_offline()
        )
        async with contextlib.AsyncExitStack() as stack:
            try:
                async with asyncio.timeout(self.connect_timeout):
                    conn = await stack.enter_async_context(connection)
                    status = await conn.open_session(self.authority, path)
            except TimeoutError:
                raise SessionEnded(f"no session within {self.connect_timeout:g}s") from None
            if status != 200:
                return f"HTTP {status}"
            self.retry.reset()
            self._connected(f"since={since}")
            return await self.keep_alive(conn)

    async def keep_alive(self, conn: WebTransportProtocol) -> str:
        """Ping on schedule until the session ends or a ping goes unanswered."""
        heartbeat = self._heartbeat = Heartbeat(self.ping_interval, self.ping_timeout, self.clock())
        while not conn.ended.is_set():
            now = self.clock()
            if heartbeat.expired(now):
                raise HeartbeatTimeout(f"no pong within {self.ping_timeout:g}s: server presumed dead")
            if heartbeat.ping_due(now):
                conn.send_ping(json.dumps({"ping": self.wall_ms()}).encode() + b"\n")
                heartbeat.ping_sent(now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(conn.ended.wait(), heartbeat.next_deadline(now) - now)
        return conn.end_reason

    # --- SessionSink: called by the connection as data arrives ----------------------------

    def _heard(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.heard(self.clock())

    def on_stream_data(self, data: bytes, ended: bool) -> None:
        received_ms = self.wall_ms()
        self._heard()
        self.add_wire_bytes(len(data), STREAM)
        for line in self._lines.feed(data):
            self.handle_line(decode_json(line), received_ms)

    def handle_line(self, payload: object, received_ms: float) -> None:
        if isinstance(payload, dict) and "reset" in payload:
            reset = payload["reset"]
            if not isinstance(reset, dict) or not isinstance(reset.get("first"), int):
                raise ProtocolError(f"bad reset: {str(payload)[:60]!r}")
            self.on_reset(reset["first"], STREAM)
            return
        if isinstance(payload, dict) and "live" in payload:
            if not isinstance(payload["live"], int) or isinstance(payload["live"], bool):
                raise ProtocolError(f"bad live marker: {str(payload)[:60]!r}")
            self.datagrams_live_from(payload["live"])
            return
        self.on_envelope(parse_envelope(payload), received_ms, STREAM)

    def datagrams_live_from(self, first: int) -> None:
        """Datagrams carry seqs from ``first`` on in this session: earlier ones were published
        while this client was away and never sent as datagrams, so they are not its losses."""
        self._live_from = first
        tracker = self.stats[DATAGRAM].tracker
        tracker.highest = max(tracker.highest, first - 1)
        early, self._early = self._early, []
        for env, received_ms in early:
            self.on_envelope(env, received_ms, DATAGRAM)

    def on_datagram(self, data: bytes) -> None:
        received_ms = self.wall_ms()
        self._heard()
        self.add_wire_bytes(len(data) + DATAGRAM_OVERHEAD_BYTES, DATAGRAM)
        env = parse_envelope(decode_json(data))
        if self._live_from is None and len(self._early) < MAX_EARLY_DATAGRAMS:
            self._early.append((env, received_ms))  # overtook the stream's {"live"} line
            return
        self.on_envelope(env, received_ms, DATAGRAM)

    def on_ping_stream_data(self, data: bytes, ended: bool) -> None:
        received_ms = self.wall_ms()
        self._heard()
        for line in self._pongs.feed(data):
            payload: Any = decode_json(line)
            if isinstance(payload, dict) and isinstance(payload.get("pong"), int | float):
                self.rtt_ms = received_ms - payload["pong"]
