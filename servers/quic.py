"""The HTTP/3 listener: WebTransport sessions at ``CONNECT /wt?since=N`` (aioquic).

Per session the server opens ONE unidirectional stream of newline-delimited JSON (reliable,
resumable with ``since``, like /ws): ``{"reset": {"since": n, "first": f}}`` when the resume
point was evicted, ``{"live": L}`` (the first seq the datagrams carry in this session, so the
client does not count what was published while it was away as datagram loss), the backlog
after ``since``, then every live envelope. Each live envelope also goes out as an HTTP/3
datagram (unreliable: lost datagrams stay lost). The client measures round trips with
``{"ping": t}`` lines on a bidirectional stream it opens, answered with ``{"pong": t}`` on
the same stream.

Faults act where a real one would: ``error`` rejects the extended CONNECT, ``stall`` and
``delay`` hold each envelope to its own send time (and stall swallows pings), ``throttle``
paces what a session sends,
``drop`` closes the QUIC connections, and loss / reorder / duplicate act on every UDP datagram
through the server's socket (:mod:`servers.quic_udp`), both ways, so that QUIC's own loss
recovery has to repair the stream.

WebTransport here is draft-ietf-webtrans-http3-02, which is what aioquic's H3Connection
speaks and what Chromium accepts with ``sec-webtransport-http3-draft: draft02``; its wire
format (shared with the client) is in :mod:`rtplay.protocol.wt`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Coroutine
from functools import partial
from typing import Any, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection, Setting
from aioquic.h3.events import (
    DataReceived,
    H3Event,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection, stream_is_unidirectional
from aioquic.quic.events import (
    ConnectionTerminated,
    ProtocolNegotiated,
    QuicEvent,
    StreamReset,
)

from rtplay.protocol.compat.aioquic import pending_datagrams, unacked_stream_bytes
from rtplay.protocol.envelope import Envelope
from rtplay.protocol.wt import (
    CLOSE_BAD_PING,
    CLOSE_SERVER_ERROR,
    CLOSE_TOO_SLOW,
    WT_PATH,
    close_capsule,
    pong_for,
)
from servers.cert import Certificate
from servers.http import WRITE_BATCH, ServerContext, Throttle, _hold_envelope
from servers.hub import Backlog
from servers.pubsub import Subscription
from servers.quic_udp import Address, ImpairedQuicServer
from servers.wtproto import RequestError, parse_connect, stream_lines

log = logging.getLogger(__name__)

TRANSPORT = "wt"

#: Largest DATAGRAM frame we accept (RFC 9221 §3 transport parameter); aioquic's example
#: server uses the same. Ours are ~100 bytes; a packet caps what is actually sent anyway.
MAX_DATAGRAM_FRAME_SIZE = 65536

#: Largest envelope sent as a datagram. A datagram must fit one QUIC packet of at least
#: 1200 bytes (RFC 9000 §14): minus the short header (≤ 25), the AEAD tag (16) and the
#: DATAGRAM frame and quarter-stream-id varints (≤ 11), with margin. Bigger envelopes
#: still go on the stream.
MAX_DATAGRAM_PAYLOAD = 1100

#: A session whose QUIC connection is silent this long is gone (the client pings every 5 s).
IDLE_TIMEOUT_S = 10.0

#: Unacknowledged bytes on a session's stream before the writer waits for ACKs: one
#: flow-control window (aioquic's default max_stream_data). More cannot be in flight, so
#: beyond it the buffer only grows while the peer or the path is slow. While the writer
#: waits, the subscription queue (bounded) fills and finally closes the session as too slow.
STREAM_HIGH_WATER_BYTES = 1024 * 1024

#: Datagrams queued inside aioquic (waiting for congestion window) before newer ones are
#: dropped at the tail, as a router queue would: ~1 s at 1000 msg/s, ~100 KiB. A datagram
#: older than that is stale for real-time use anyway.
MAX_PENDING_DATAGRAMS = 1024

#: Client→server ping lines are ``{"ping": <float>}``, ~30 bytes.
MAX_PING_LINE_BYTES = 1024

#: Bidirectional (ping) streams a session may have open at once; ours uses one.
MAX_PING_STREAMS = 4

#: WebTransport sessions one QUIC connection may carry (ours carries one).
MAX_SESSIONS_PER_CONNECTION = 8

#: Response header naming the WebTransport draft the server speaks (Chromium checks it).
DRAFT_HEADER = b"sec-webtransport-http3-draft"

DROPPED = "connection dropped (fault)"
STOPPED = "server stopped"


# --- sessions ------------------------------------------------------------------------------


def held(ctx: ServerContext, env: Envelope, now_s: float) -> bool:
    """Whether a fault holds ``env`` at wall time ``now_s`` (a stall, or ``delay`` not yet over
    since the envelope's own send time)."""
    if ctx.faults.stalled(TRANSPORT):
        return True
    delay = ctx.faults.delay_for(TRANSPORT)
    return bool(delay) and env.t / 1000 + delay > now_s


class WtSession:
    """One WebTransport session: envelopes out on a stream and as datagrams, pings answered."""

    def __init__(self, conn: _WtServerProtocol, h3: H3Connection, session_id: int, since: int) -> None:
        self._conn = conn
        self._h3 = h3
        self._quic = conn.quic
        self.session_id = session_id
        """The stream id of the CONNECT request (draft-ietf-webtrans-http3-02 §2)."""
        self.since = since
        self._stream_id: int | None = None
        self._pings: dict[int, bytearray] = {}
        self._throttle = Throttle(conn.listener.ctx, TRANSPORT)
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.datagrams_shed = 0
        """Datagrams not sent: aioquic's queue was full, or one would not fit a packet."""

    def start(self, spawn: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]) -> None:
        self._task = spawn(self._run())

    def abort(self) -> None:
        """The ``drop`` fault: close this session's QUIC connection at once."""
        self._conn.abort(DROPPED)

    def end(self) -> None:
        """The session is over (connection gone, client closed it): stop sending."""
        self.closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()

    def close(self, code: int, reason: str) -> None:
        """Close the session with a reason the client can show, then stop (idempotent)."""
        if self.closed:
            return
        log.info("wt: closing session %d: %s", self.session_id, reason)
        try:
            if self._stream_id is not None:
                self._quic.send_stream_data(self._stream_id, b"", end_stream=True)
            self._h3.send_data(self.session_id, close_capsule(code, reason), end_stream=True)
        except Exception as exc:  # the peer may have reset the stream: nothing left to tell it
            log.debug("wt: session %d close not sent: %s", self.session_id, exc)
        self._conn.transmit()
        self.end()

    async def _run(self) -> None:
        ctx = self._conn.listener.ctx
        sub, backlog = ctx.broadcaster.subscribe(self.since)
        live_from = ctx.broadcaster.hub.last_seq + 1  # subscribe() is synchronous: no gap, no overlap
        try:
            with ctx.registry.track(TRANSPORT, self.abort):
                reason = await self._stream(ctx, sub, backlog, live_from)
            self.close(CLOSE_TOO_SLOW, reason)
        except Exception:  # a bug or an aioquic surprise ends this session, not the server
            log.exception("wt: session %d failed", self.session_id)
            self.close(CLOSE_SERVER_ERROR, "server error")
        finally:
            ctx.broadcaster.unsubscribe(sub)
            self._conn.forget(self.session_id)

    async def _stream(
        self, ctx: ServerContext, sub: Subscription, backlog: Backlog, live_from: int
    ) -> str:
        """Send the backlog, then live envelopes, until the subscription closes (returns why)."""
        stream_id = self._h3.create_webtransport_stream(self.session_id, is_unidirectional=True)
        self._stream_id = stream_id
        head: list[dict[str, object]] = []
        if backlog.reset is not None:
            head.append({"reset": backlog.reset.to_json()})
        head.append({"live": live_from})
        self._quic.send_stream_data(stream_id, "".join(json.dumps(line) + "\n" for line in head).encode())
        last = self.since
        for start in range(0, len(backlog.messages), WRITE_BATCH):
            chunk = backlog.messages[start : start + WRITE_BATCH]
            await self._write_in_time(ctx, stream_id, chunk, live=False)
            last = chunk[-1].seq
        while True:
            env = await sub.get()
            if env is None:
                return sub.reason
            batch = [e for e in [env, *sub.drain(WRITE_BATCH - 1)] if e.seq > last]
            if batch:
                await self._write_in_time(ctx, stream_id, batch, live=True)
                last = batch[-1].seq

    async def _write_in_time(
        self, ctx: ServerContext, stream_id: int, batch: list[Envelope], live: bool
    ) -> None:
        """Write ``batch``, each envelope no earlier than its own time (``delay`` and
        ``stall`` hold each one): envelopes already due go out together, and the writer
        flushes what it has before it waits for the next one."""
        start = 0
        for index, env in enumerate(batch):
            if index > start and held(ctx, env, time.time()):
                await self._write(stream_id, batch[start:index], live)
                start = index
            await _hold_envelope(ctx, TRANSPORT, env)
        await self._write(stream_id, batch[start:], live)

    async def _write(self, stream_id: int, batch: list[Envelope], live: bool) -> None:
        """Envelopes on the stream (waiting while it is too far behind), live ones as datagrams."""
        while unacked_stream_bytes(self._quic, stream_id) > STREAM_HIGH_WATER_BYTES:
            self._conn.progress.clear()
            await self._conn.progress.wait()
        data = stream_lines(batch)
        datagrams = [env.json.encode() for env in batch] if live else []
        await self._throttle(len(data) + sum(map(len, datagrams)))  # the path's bandwidth is shared
        self._quic.send_stream_data(stream_id, data)
        for payload in datagrams:
            self._send_datagram(payload)
        self._conn.transmit()

    def _send_datagram(self, payload: bytes) -> None:
        # RFC 9297 §2.1.1: only to a peer whose SETTINGS enabled HTTP/3 datagrams.
        settings = self._h3.received_settings or {}
        if (
            settings.get(Setting.H3_DATAGRAM) != 1
            or len(payload) > MAX_DATAGRAM_PAYLOAD
            or pending_datagrams(self._quic) >= MAX_PENDING_DATAGRAMS
        ):
            self.datagrams_shed += 1  # tail drop: the client counts it as lost
            return
        self._h3.send_datagram(self.session_id, payload)

    def stream_data(self, stream_id: int, data: bytes, ended: bool) -> None:
        """Data on a client-opened stream of this session: ping lines on a bidi stream."""
        if stream_is_unidirectional(stream_id) or self.closed:
            return  # a client→server uni stream carries nothing we use
        buffer = self._pings.get(stream_id)
        if buffer is None:
            if len(self._pings) >= MAX_PING_STREAMS:
                self.close(CLOSE_BAD_PING, f"more than {MAX_PING_STREAMS} ping streams")
                return
            buffer = self._pings[stream_id] = bytearray()
        buffer += data
        *lines, rest = buffer.split(b"\n")
        if len(rest) > MAX_PING_LINE_BYTES:
            self.close(CLOSE_BAD_PING, f"ping line over {MAX_PING_LINE_BYTES} bytes")
            return
        self._pings[stream_id] = bytearray(rest)
        ctx = self._conn.listener.ctx
        ctx.faults.expire(ctx.clock())
        for line in filter(None, lines):
            try:
                pong = pong_for(line)
            except ValueError as exc:
                self.close(CLOSE_BAD_PING, str(exc))
                return
            if not ctx.faults.stalled(TRANSPORT):  # a stalled server answers nothing
                self._quic.send_stream_data(stream_id, pong)
        if ended:
            del self._pings[stream_id]
            self._quic.send_stream_data(stream_id, b"", end_stream=True)
        self._conn.transmit()


# --- one QUIC connection -------------------------------------------------------------------


class _WtServerProtocol(QuicConnectionProtocol):
    """One QUIC connection: HTTP/3 requests in, WebTransport sessions out."""

    def __init__(
        self, quic: QuicConnection, stream_handler: Any = None, *, listener: QuicListener
    ) -> None:
        super().__init__(quic, stream_handler)
        self.listener = listener
        self._h3: H3Connection | None = None
        self._sessions: dict[int, WtSession] = {}
        self.progress = asyncio.Event()
        """Set whenever the peer sent something (e.g. ACKs): a blocked writer may go on."""

    @property
    def quic(self) -> QuicConnection:
        return self._quic

    def abort(self, reason: str = DROPPED) -> None:
        """Close at once (RFC 9000 §10.2 immediate close), and every session with it."""
        self.close(error_code=ErrorCode.H3_NO_ERROR, reason_phrase=reason)
        self._end_sessions()

    def forget(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    def datagram_received(self, data: bytes | str, addr: Address) -> None:
        super().datagram_received(data, addr)
        self.progress.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, ConnectionTerminated):
            self._end_sessions()
        elif isinstance(event, StreamReset) and event.stream_id in self._sessions:
            self._sessions[event.stream_id].end()  # the client cancelled its CONNECT
        if self._h3 is None:
            return
        try:
            for h3_event in self._h3.handle_event(event):
                self._h3_event_received(self._h3, h3_event)
        except Exception:  # one connection's surprise must not escape into the socket loop
            log.exception("wt: handling %r failed", event)
            self.abort("server error")

    def _end_sessions(self) -> None:
        for session in list(self._sessions.values()):
            session.end()
        self.progress.set()

    def _h3_event_received(self, h3: H3Connection, event: H3Event) -> None:
        if isinstance(event, HeadersReceived) and event.stream_id not in self._sessions:
            self._request(h3, event)
        elif isinstance(event, WebTransportStreamDataReceived):
            session = self._sessions.get(event.session_id)
            if session is not None:
                session.stream_data(event.stream_id, event.data, event.stream_ended)
        elif isinstance(event, DataReceived) and event.stream_ended and event.stream_id in self._sessions:
            # draft-ietf-webtrans-http3-02 §5: a FIN on the CONNECT stream ends the session.
            self._sessions[event.stream_id].end()
        # Datagrams from the client carry nothing we use; they are dropped.

    def _request(self, h3: H3Connection, event: HeadersReceived) -> None:
        ctx = self.listener.ctx
        try:
            since = parse_connect(event.headers)
            ctx.faults.expire(ctx.clock())
            code = ctx.faults.error_for(TRANSPORT)
            if code is not None:
                raise RequestError(code, f"injected fault: error {code}")
            if len(self._sessions) >= MAX_SESSIONS_PER_CONNECTION:
                raise RequestError(429, f"at most {MAX_SESSIONS_PER_CONNECTION} sessions per connection")
        except RequestError as exc:
            self._reject(h3, event.stream_id, exc)
            return
        # draft-ietf-webtrans-http3-02 §3.3: a 2xx accepts the session; Chromium also wants
        # to be told which draft the server speaks.
        h3.send_headers(event.stream_id, [(b":status", b"200"), (DRAFT_HEADER, b"draft02")])
        session = self._sessions[event.stream_id] = WtSession(self, h3, event.stream_id, since)
        session.start(self.listener._spawn)
        self.transmit()

    def _reject(self, h3: H3Connection, stream_id: int, exc: RequestError) -> None:
        log.info("wt: rejecting a request with %d: %s", exc.status, exc)
        headers = [(b":status", str(exc.status).encode()), (b"content-type", b"application/json")]
        if exc.status == 503:
            headers.append((b"retry-after", str(self.listener.ctx.config.error_retry_after_s).encode()))
        try:
            if exc.status == 204:
                h3.send_headers(stream_id, headers[:1], end_stream=True)
            else:
                h3.send_headers(stream_id, headers)
                h3.send_data(stream_id, json.dumps({"error": str(exc)}).encode(), end_stream=True)
        except Exception as error:  # e.g. the request stream was already reset: nothing to answer
            log.debug("wt: rejection not sent: %s", error)
        self.transmit()


# --- the listener --------------------------------------------------------------------------


class QuicListener:
    """The UDP port serving HTTP/3; every session registers as ``wt`` in ``ctx.registry``."""

    def __init__(
        self,
        ctx: ServerContext,
        host: str,
        port: int,
        cert: Certificate,
        *,
        idle_timeout: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.ctx = ctx
        self.host = host
        self.port = port
        """The UDP port; 0 until :meth:`start` binds a free one, then kept for restarts."""
        self.cert = cert
        self.idle_timeout = idle_timeout
        self._server: ImpairedQuicServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}{WT_PATH}"

    def _configuration(self) -> QuicConfiguration:
        return QuicConfiguration(
            is_client=False,
            alpn_protocols=H3_ALPN,
            max_datagram_frame_size=MAX_DATAGRAM_FRAME_SIZE,
            idle_timeout=self.idle_timeout,
            certificate=self.cert.certificate,
            private_key=self.cert.private_key,
        )

    def _fate(self) -> tuple[bool, bool, bool]:
        self.ctx.faults.expire(self.ctx.clock())
        return self.ctx.faults.datagram_fate(TRANSPORT)

    async def start(self) -> None:
        """Bind the UDP port (the same one again after a stop) and serve."""
        if self._server is not None:
            return
        loop = asyncio.get_running_loop()
        configuration = self._configuration()
        transport, server = await loop.create_datagram_endpoint(
            lambda: ImpairedQuicServer(
                fate=self._fate,
                configuration=configuration,
                create_protocol=partial(_WtServerProtocol, listener=self),
            ),
            local_addr=(self.host, self.port),
        )
        self.port = transport.get_extra_info("sockname")[1]
        self._server = cast(ImpairedQuicServer, server)
        log.info("HTTP/3 (WebTransport) listening on %s", self.url)

    async def stop(self) -> None:
        """Close every QUIC connection, then the socket: the port answers nothing after."""
        server, self._server = self._server, None
        if server is None:
            return
        for conn in server.connections(_WtServerProtocol):
            conn.abort(STOPPED)
        server.close()
        await server.socket_closed.wait()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.info("HTTP/3 listener stopped")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name="rtplay-wt-session")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
