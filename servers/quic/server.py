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
paces what a session sends — all three in the per-session sender, :mod:`servers.quic.wt_session`
— ``drop`` closes the QUIC connections, and loss / reorder / duplicate act on every UDP
datagram through the server's socket (:mod:`servers.quic.udp`), both ways, so that QUIC's
own loss recovery has to repair the stream.

A peer that grants no flow-control credit cannot make the server hoard: what waits for it is
bounded per session and per connection (:mod:`servers.quic.budget`), its stuck sessions are
closed, and a connection whose bytes still wait for credit ``stuck_after_s`` after that is
closed too (H3_EXCESSIVE_LOAD), which releases everything it held.

WebTransport here is draft-ietf-webtrans-http3-02, which is what aioquic's H3Connection
speaks and what Chromium accepts with ``sec-webtransport-http3-draft: draft02``; its wire
format (shared with the client) is in :mod:`rtplay.protocol.wt`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine
from functools import partial
from typing import Any

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, ErrorCode, H3Connection
from aioquic.h3.events import (
    DataReceived,
    H3Event,
    HeadersReceived,
    WebTransportStreamDataReceived,
)
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    ProtocolNegotiated,
    QuicEvent,
    StreamReset,
)

from rtplay.compat.aioquic import buffered_bytes, connection_send_state
from rtplay.protocol.wt import WT_PATH
from rtplay.runtime.memory import MemoryReturn
from servers.core.cert import Certificate
from servers.core.context import ServerContext
from servers.quic.budget import STUCK_AFTER_S, CreditWatch
from servers.quic.udp import UNHARMED, Address, ImpairedQuicServer
from servers.quic.wt_session import DROPPED, WtSession
from servers.quic.wtproto import RequestError, parse_connect

log = logging.getLogger(__name__)

TRANSPORT = "wt"

#: Largest DATAGRAM frame we accept (RFC 9221 §3 transport parameter); aioquic's example
#: server uses the same. Ours are ~100 bytes; a packet caps what is actually sent anyway.
MAX_DATAGRAM_FRAME_SIZE = 65536

#: A session whose QUIC connection is silent this long is gone (the client pings every 5 s).
IDLE_TIMEOUT_S = 10.0

#: WebTransport sessions one QUIC connection may carry (ours carries one).
MAX_SESSIONS_PER_CONNECTION = 8

#: Response header naming the WebTransport draft the server speaks (Chromium checks it).
DRAFT_HEADER = b"sec-webtransport-http3-draft"

STOPPED = "server stopped"

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
        self._progress = asyncio.Event()
        self._watch = CreditWatch(listener.stuck_after_s)
        """Does what the connection holds wait for credit its peer does not grant?"""
        self._reaper: asyncio.TimerHandle | None = None
        self._hoarded = False
        """A session of this connection was closed with bytes stuck for the peer."""

    @property
    def progress(self) -> asyncio.Event:
        """Set whenever the peer sent something (e.g. ACKs): a blocked writer may go on."""
        return self._progress

    @property
    def ctx(self) -> ServerContext:
        return self.listener.ctx

    @property
    def quic(self) -> QuicConnection:
        return self._quic

    def abort(self, reason: str = DROPPED, error_code: int = ErrorCode.H3_NO_ERROR) -> None:
        """Close at once (RFC 9000 §10.2 immediate close), and every session with it."""
        self.close(error_code=error_code, reason_phrase=reason)
        self._end_sessions()

    def forget(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    @property
    def buffered(self) -> int:
        """Bytes this connection holds for its peer (every stream, queued datagrams)."""
        return buffered_bytes(self._quic)

    def peer_not_reading(self) -> None:
        """A session closed with bytes stuck for the peer: from now on, reap the connection
        if what it holds goes on waiting for credit (e.g. the close capsule itself)."""
        self._hoarded = True
        self.listener.release_memory_soon()
        if self._reaper is None:
            self._reap_if_stuck()

    def _reap_if_stuck(self) -> None:
        self._reaper = None
        state = connection_send_state(self._quic)
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._watch.observe(state.blocked, state.progress, now)
        if self._watch.stuck(now):
            reason = f"peer not reading: {state.buffered} bytes waited {self._watch.stuck_after_s:g} s for credit"
            log.info("wt: closing a connection: %s", reason)
            # RFC 9114 §8.1: H3_EXCESSIVE_LOAD, the peer behaves in a way that loads us.
            self.abort(reason, ErrorCode.H3_EXCESSIVE_LOAD)
        elif state.buffered:  # look again when it would count as stuck (or later still)
            again = self._watch.deadline or now + self._watch.stuck_after_s
            self._reaper = loop.call_at(again, self._reap_if_stuck)

    def datagram_received(self, data: bytes | str, addr: Address) -> None:
        super().datagram_received(data, addr)
        self.progress.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ProtocolNegotiated) and event.alpn_protocol in H3_ALPN:
            self._h3 = H3Connection(self._quic, enable_webtransport=True)
        elif isinstance(event, ConnectionTerminated):
            self._end_sessions()
            if self._hoarded:  # what it held goes with it
                self.listener.release_memory_soon()
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
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
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
        session = self._sessions[event.stream_id] = WtSession(
            self, h3, event.stream_id, since, self.listener.stuck_after_s
        )
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
        stuck_after_s: float = STUCK_AFTER_S,
        memory: MemoryReturn | None = None,
    ) -> None:
        self.ctx = ctx
        self.host = host
        self.port = port
        """The UDP port; 0 until :meth:`start` binds a free one, then kept for restarts."""
        self.cert = cert
        self.idle_timeout = idle_timeout
        self.stuck_after_s = stuck_after_s
        """Seconds bytes may wait for a peer's flow-control credit before its session (then
        its connection) is closed (:mod:`servers.quic.budget`)."""
        self._server: ImpairedQuicServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.memory = memory or MemoryReturn()
        """Gives the heap's freed pages back after a peer that did not read is let go (the
        server passes its own, so one schedule governs every trim)."""

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
        faults = self.ctx.faults
        if faults.none_active():  # every datagram both ways asks: answer the common case first
            return UNHARMED
        faults.expire(self.ctx.clock())
        return faults.datagram_fate(TRANSPORT)

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
        self._server = server
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

    def release_memory_soon(self) -> None:
        """A peer that did not read is being let go: once what it held (up to a connection's
        whole send budget) is freed, hand the memory back to the system."""
        self.memory.burst_ended()

    def buffered(self) -> list[int]:
        """Bytes each live QUIC connection holds for its peer (what a hoarder could pile up)."""
        return [] if self._server is None else [c.buffered for c in self._server.connections(_WtServerProtocol)]

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name="rtplay-wt-session")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
