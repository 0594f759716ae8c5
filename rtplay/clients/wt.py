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

The QUIC connection carrying the session is :mod:`rtplay.clients.wt_conn`; the wire format
shared with the server is :mod:`rtplay.protocol.wt`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aioquic.quic.configuration import QuicConfiguration

from rtplay.clients.base import Emit
from rtplay.clients.core import ATTEMPT_ERRORS, LiveStart, ReconnectingClient, wait_ended
from rtplay.clients.wt_conn import (
    SessionEnded,
    WebTransportProtocol,
    client_configuration,
    open_connection,
)
from rtplay.model.retry import DEFAULT_PING_INTERVAL_S, DEFAULT_PING_TIMEOUT_S
from rtplay.protocol import messages
from rtplay.protocol.envelope import ProtocolError, decode_json, parse_envelope
from rtplay.protocol.messages import LIVE, PONG, number_of

STREAM = "stream"
DATAGRAM = "datagram"

#: QUIC handshake plus the CONNECT response. Loopback answers in milliseconds; 3 s also
#: covers the first handshake retransmissions (aioquic's initial RTT guess is 100 ms).
DEFAULT_CONNECT_TIMEOUT_S = 3.0

#: QUIC idle timeout (RFC 9000 §10.1): the backstop when pings cannot get through at all.
#: Longer than the ping interval, so a live but quiet session never idles out.
DEFAULT_IDLE_TIMEOUT_S = 10.0

#: Longest line accepted on the stream: an envelope is ~100 bytes.
MAX_LINE_BYTES = 64 * 1024

#: Framing a datagram adds to its payload: DATAGRAM frame type and length varints and the
#: quarter stream id (RFC 9297 §2.1). Packet headers are shared between frames, not counted.
DATAGRAM_OVERHEAD_BYTES = 4

#: Stream bytes held while the session's 200 is still on its way up to the client (they can
#: share a packet). A few packets' worth in practice; past this the client just goes on.
MAX_EARLY_STREAM_BYTES = 1024 * 1024


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
            *parts, rest = self._partial.split(b"\n")
            lines = [bytes(part) for part in parts]
            self._partial = bytearray(rest)
        if len(self._partial) > self.limit:
            raise ProtocolError(f"line longer than {self.limit} bytes")
        return [line for line in lines if line]


# --- the client ----------------------------------------------------------------------------


class WebTransportClient(ReconnectingClient):
    """Reads envelopes from ``CONNECT /wt?since=N`` on a stream and as datagrams."""

    name = "wt"
    channels = (STREAM, DATAGRAM)
    errors = (*ATTEMPT_ERRORS, SessionEnded, ConnectionError)
    unreliable_channels = (DATAGRAM,)

    def __init__(
        self,
        host: str,
        port: int,
        cert_der: bytes,
        emit: Emit | None = None,
        *,
        ping_interval: float = DEFAULT_PING_INTERVAL_S,
        ping_timeout: float = DEFAULT_PING_TIMEOUT_S,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT_S,
        **kw: Any,
    ) -> None:
        self.host = host
        self.port = port
        self.authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        super().__init__(f"https://{self.authority}", emit, **kw)
        self.cert_der = cert_der
        self.idle_timeout = idle_timeout
        self.configuration: QuicConfiguration | None = None
        """Built from ``cert_der`` when :meth:`run` starts."""
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.connect_timeout = connect_timeout
        self.rtt_ms: float | None = None
        """The last measured round-trip time on the ping stream."""
        self._lines = LineBuffer()
        self._pongs = LineBuffer()
        self._early_stream: list[tuple[bytes, float]] | None = None
        """Stream data that arrived before the session was reported open (None once it is)."""
        self._early_bytes = 0
        self._datagrams = self._live_channel()

    def _live_channel(self) -> LiveStart:
        return LiveStart(
            lambda first: self.on_live(first, DATAGRAM),
            lambda env, ms: self.on_envelope(env, ms, DATAGRAM),
        )

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
        await super().run()

    async def attempt(self) -> str:
        """One connection and session: returns (or raises) why it ended."""
        assert self.configuration is not None, "run() builds the configuration"
        self._lines, self._pongs = LineBuffer(), LineBuffer()  # no partial line crosses sessions
        self._early_stream, self._early_bytes = [], 0
        self._datagrams = self._live_channel()
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
            self._connected(f"since={since}")
            early, self._early_stream = self._early_stream, None
            for data, received_ms in early or ():
                self._stream_bytes(data, received_ms)
            return await self.keep_alive(conn)

    async def keep_alive(self, conn: WebTransportProtocol) -> str:
        """Ping on schedule until the session ends or a ping goes unanswered."""

        async def ping() -> None:
            conn.send_ping(messages.ping(self.wall_ms()).encode() + b"\n")

        await self.heartbeat_loop(ping, lambda s: wait_ended(conn.ended, s), self.ping_interval, self.ping_timeout)
        return conn.end_reason

    # --- SessionSink: called by the connection as data arrives ----------------------------

    def _heard(self) -> None:
        self.heard()

    def on_stream_data(self, data: bytes, ended: bool) -> None:
        received_ms = self.wall_ms()
        self._heard()
        if self._early_stream is not None and self._early_bytes < MAX_EARLY_STREAM_BYTES:
            # The stream can beat the session's 200 in one packet: hold it until the session is
            # reported open, so the backlog counts as replayed after the reconnect, as elsewhere.
            self._early_stream.append((data, received_ms))
            self._early_bytes += len(data)
            return
        self._stream_bytes(data, received_ms)

    def _stream_bytes(self, data: bytes, received_ms: float) -> None:
        self.add_wire_bytes(len(data), STREAM)
        for line in self._lines.feed(data):
            self.handle_line(decode_json(line), received_ms)

    def handle_line(self, payload: object, received_ms: float) -> None:
        if self.handle_reset(payload, STREAM):
            return
        if isinstance(payload, dict) and LIVE in payload:
            self._datagrams.start(payload[LIVE])
            return
        self.on_envelope(parse_envelope(payload), received_ms, STREAM)

    def on_datagram(self, data: bytes) -> None:
        received_ms = self.wall_ms()
        self._heard()
        self.add_wire_bytes(len(data) + DATAGRAM_OVERHEAD_BYTES, DATAGRAM)
        self._datagrams.offer(parse_envelope(decode_json(data)), received_ms)

    def on_ping_stream_data(self, data: bytes, ended: bool) -> None:
        received_ms = self.wall_ms()
        self._heard()
        for line in self._pongs.feed(data):
            payload: Any = decode_json(line)
            if (stamp := number_of(payload, PONG)) is not None:
                self.rtt_ms = received_ms - stamp
