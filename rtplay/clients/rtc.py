"""WebRTC data channels: signal over HTTP, then receive on ``reliable`` and ``unreliable``.

The client offers both channels (ICE on the signaling host only: loopback by default),
posts the offer to ``/rtc/offer?since=N`` and waits for both channels to open; a message
on either channel carries exactly one envelope (or one control object). aiortc reports
only ``failed`` and ``closed`` (no ``disconnected``), and a stalled server keeps its connection up,
so an app-level heartbeat on ``reliable`` decides
when the peer is dead. Any end — failed or closed connection, a closed channel, a silent
heartbeat, a refused or failed signaling request — re-signals with exponential backoff
and resumes ``reliable`` from its cursor. As in a browser, where ``RTCPeerConnection.close()``
returns at once, the retry wait starts when the end is noticed: the old connection's
teardown runs beside it, and the next attempt starts once that teardown is over.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidStateError

from rtplay.clients.base import Emit, is_heartbeat
from rtplay.clients.core import HeartbeatTimeout, LiveStart, ReconnectingClient, wait_ended
from rtplay.clients.http_common import (
    HTTP_ERRORS,
    StatusError,
    describe_request_error,
    make_http_client,
)
from rtplay.compat.aioice import gather_on
from rtplay.compat.aiortc import FaultyPath, ice_transport_of, lighten
from rtplay.compat.aiortc_fork_sctp import deliver_text
from rtplay.model.retry import DEFAULT_PING_INTERVAL_S, DEFAULT_PING_TIMEOUT_S
from rtplay.protocol import messages
from rtplay.protocol.envelope import ProtocolError, decode_json, parse_envelope
from rtplay.protocol.ice import LOOPBACK, candidate_addresses, ensure_on_host, restrict_candidates
from rtplay.protocol.messages import CLOSING, LIVE, PONG, number_of

log = logging.getLogger(__name__)

RELIABLE = "reliable"
UNRELIABLE = "unreliable"

#: From the answer to both channels open. Loopback set-up takes ~50 ms; 10 s leaves room
#: for DTLS/SCTP retransmissions under a loss fault before giving up on the attempt.
DEFAULT_OPEN_TIMEOUT_S = 10.0

#: Read timeout of the signaling request: the server answers once its ICE has gathered.
SIGNAL_TIMEOUT_S = 10.0

#: Grace for aiortc to send its SCTP ABORT and close the socket when an attempt ends.
CLOSE_TIMEOUT_S = 2.0

#: Per-message framing counted as wire bytes: the SCTP DATA chunk header (RFC 9260 §3.3.1).
#: Packet-level overhead (SCTP common header, DTLS record, UDP) is shared by bundled chunks
#: and, like TCP/IP under a WebSocket, not counted.
CHUNK_HEADER_BYTES = 16


class ConnectionEnded(Exception):
    """The peer connection or one of its channels ended; the message says how."""


def ice_host_of(http_url: str) -> str:
    """The address ICE may use: the signaling host (an IP literal, or localhost = loopback)."""
    host = urlsplit(http_url).hostname or ""
    if host == "localhost":
        return LOOPBACK
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"rtc needs an IP address in the server URL, got {host!r}") from None
    return host


async def _close(pc: RTCPeerConnection) -> None:
    """Close an ended attempt's peer connection (aiortc sends its SCTP ABORT), bounded."""
    try:
        await asyncio.wait_for(pc.close(), CLOSE_TIMEOUT_S)
    except TimeoutError:
        log.warning("rtc: closing the peer connection timed out")
    except Exception:  # a failed teardown is logged; the client goes on
        log.exception("rtc: closing the peer connection failed")


class _Link:
    """One attempt's peer connection: its channels, how it ended, where ``unreliable`` starts."""

    def __init__(self, pc: RTCPeerConnection, unreliable: LiveStart) -> None:
        self.pc = pc
        self.ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.open = asyncio.Event()
        self.reliable = pc.createDataChannel(RELIABLE)
        # RFC 8831 §6.1: a partially reliable, unordered channel: no retransmission at all.
        self.unreliable = pc.createDataChannel(UNRELIABLE, ordered=False, maxRetransmits=0)
        self.live = unreliable
        """Where ``unreliable`` starts on this connection (the server's ``{"live": L}``)."""
        self.up = False
        self.on_first_data: Callable[[], None] = lambda: None
        """Called by the first message before the link is up (the client reports it up)."""
        """Reported connected: at its first message or once both channels are open, whichever
        is first (the server sends the backlog as soon as ``reliable`` opens, and that replay
        belongs to this connection, not the dead one)."""

    def end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    def check_open(self) -> None:
        if self.reliable.readyState == "open" and self.unreliable.readyState == "open":
            self.open.set()


class RTCClient(ReconnectingClient):
    """Receives envelopes on two WebRTC data channels; re-signals with backoff."""

    name = "rtc"
    channels = (RELIABLE, UNRELIABLE)
    errors = (*HTTP_ERRORS, ConnectionEnded, HeartbeatTimeout, TimeoutError)
    unreliable_channels = (UNRELIABLE,)

    def __init__(
        self,
        http_url: str,
        emit: Emit | None = None,
        *,
        ping_interval: float = DEFAULT_PING_INTERVAL_S,
        ping_timeout: float = DEFAULT_PING_TIMEOUT_S,
        open_timeout: float = DEFAULT_OPEN_TIMEOUT_S,
        **kw: Any,
    ) -> None:
        super().__init__(http_url, emit, **kw)
        self._http: httpx.AsyncClient | None = None
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        self.ice_host = ice_host_of(http_url)
        self.rtt_ms: float | None = None
        """The last measured round-trip time on ``reliable``."""
        self.setup_ms: float | None = None
        """The last connection set-up time: offer created → both channels open."""
        self.last_offer = ""
        self.last_answer = ""
        """The SDPs of the last attempt, as sent and as received (for inspection)."""
        self._closing: set[asyncio.Task[None]] = set()
        """Teardowns of ended attempts still running (at most one: each attempt awaits the
        previous one's; each bounded by :data:`CLOSE_TIMEOUT_S`)."""

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        async with make_http_client(read_timeout=SIGNAL_TIMEOUT_S) as self._http:
            try:
                yield
            finally:
                await self._closed()

    async def _closed(self) -> None:
        """Wait until every ended attempt's peer connection is closed (cancelling this ends them)."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _close_later(self, pc: RTCPeerConnection) -> None:
        """Close ``pc`` beside the retry decision and wait, not before them: a browser's
        ``close()`` returns at once, and the wait is counted from when the end was noticed."""
        task = asyncio.create_task(_close(pc), name="rtc-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def explain(self, exc: BaseException) -> tuple[str, float | None]:
        if isinstance(exc, StatusError):
            return f"signaling refused: {describe_request_error(exc)}", exc.retry_after
        if isinstance(exc, HTTP_ERRORS):  # includes ProtocolError
            return f"signaling failed: {describe_request_error(exc)}", None
        return super().explain(exc)

    async def attempt(self) -> str:
        assert self._http is not None, "run() opens the HTTP client"
        await self._attempt(self._http)
        return "ended"  # never reached: an attempt always ends by raising

    async def _attempt(self, http: httpx.AsyncClient) -> None:
        """One peer connection, from offer to its end (always raises when it ends)."""
        await self._closed()  # the previous connection's sockets are gone before new ones gather
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # [] : no STUN/TURN at all
        unreliable = LiveStart(
            lambda first: self.on_live(first, UNRELIABLE),
            lambda env, ms: self.on_envelope(env, ms, UNRELIABLE),
        )
        link = _Link(pc, unreliable)
        self._wire(link)
        lighten(pc)  # a SACK per two packets rather than per packet (and bundled pings)
        offline: FaultyPath | None = None
        try:
            started = self.clock()
            since = self.cursor
            self.check_online()
            with gather_on(self.ice_host):
                await pc.setLocalDescription(await pc.createOffer())
                self.last_offer = pc.localDescription.sdp
                ensure_on_host(self.last_offer, self.ice_host)
                answer = await self._signal(http, self.last_offer, since)
                try:
                    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
                except Exception as exc:  # aiortc raises assorted types on a bad answer
                    raise ProtocolError(f"answer rejected: {type(exc).__name__}: {str(exc)[:80]}") from None
            if pc.sctp is not None:
                # The offline fault: this client's DTLS/SCTP datagrams go nowhere, both ways,
                # so SCTP retransmits into the void and the heartbeat decides, as on a real
                # dead link.
                offline = FaultyPath(ice_transport_of(pc), self._offline_fate, self.clock)
            link.on_first_data = lambda: self._link_up(link, since, started)
            await self._wait_open(link)
            self._link_up(link, since, started)
            await self._receive(link)
        finally:
            if offline is not None:
                offline.close()
            self._close_later(pc)

    def _link_up(self, link: _Link, since: int, started: float) -> None:
        """Report ``link`` connected, once: its first message or its open channels, whichever is first."""
        if link.up:
            return
        link.up = True
        self.setup_ms = (self.clock() - started) * 1000
        self._connected(f"since={since}, set-up {self.setup_ms:.0f} ms")

    def _offline_fate(self) -> tuple[bool, bool, bool]:
        return (self.is_offline(), False, False)

    def _wire(self, link: _Link) -> None:
        pc = link.pc

        def on_state() -> None:
            if pc.connectionState in ("failed", "closed"):
                link.end(f"peer connection {pc.connectionState}")

        pc.on("connectionstatechange", on_state)
        for channel in (link.reliable, link.unreliable):
            channel.on("open", link.check_open)
            channel.on("close", lambda label=channel.label: link.end(f"server closed the {label} channel"))
            handler = self._message_handler(link, channel)
            channel.on("message", handler)  # binary or empty: unexpected, refused by the handler
            deliver_text(channel, handler)  # text, as the server sends: no event emitter per message

    def _message_handler(self, link: _Link, channel: RTCDataChannel) -> Callable[[object], None]:
        label = channel.label

        def on_message(message: object) -> None:
            received_ms = self.wall_ms()
            self.heard()
            if not link.up:
                link.on_first_data()
            try:
                if isinstance(message, str):  # as the server sends: decoded as is, no round trip to bytes
                    size = len(message) if message.isascii() else len(message.encode())
                elif isinstance(message, bytes):
                    size = len(message)
                else:
                    raise ProtocolError(f"unexpected message type {type(message).__name__}")
                payload = decode_json(message)  # one envelope each
                if not is_heartbeat(payload):
                    self.add_wire_bytes(size + CHUNK_HEADER_BYTES, label)
                self.handle(link, payload, received_ms, label)
            except ProtocolError as exc:
                link.end(f"bad message on {label}: {exc}")

        return on_message

    async def _signal(self, http: httpx.AsyncClient, offer: str, since: int) -> str:
        """POST the offer; return the answer's SDP restricted to our ICE host."""
        response = await http.post(
            f"{self.base_url}/rtc/offer", params={"since": since}, json={"sdp": offer, "type": "offer"}
        )
        if response.status_code != 200:
            raise StatusError(response)
        payload = decode_json(response.content)
        if not isinstance(payload, dict) or payload.get("type") != "answer" or not isinstance(payload.get("sdp"), str):
            raise ProtocolError('expected {"sdp": ..., "type": "answer"}')
        self.last_answer = payload["sdp"]
        answer, removed = restrict_candidates(self.last_answer, self.ice_host)
        if removed:
            log.warning("rtc: ignored answer candidates off %s: %s", self.ice_host, removed)
        if not candidate_addresses(answer):
            raise ProtocolError(f"answer has no ICE candidate on {self.ice_host}")
        return answer

    async def _wait_open(self, link: _Link) -> None:
        opened = asyncio.ensure_future(link.open.wait())
        waiters: set[asyncio.Future[Any]] = {opened, link.ended}
        try:
            done, _ = await asyncio.wait(waiters, timeout=self.open_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            opened.cancel()
        if link.ended.done():
            raise ConnectionEnded(f"before the channels opened: {link.ended.result()}")
        if not done:
            raise TimeoutError(f"channels not open within {self.open_timeout:g}s")

    async def _receive(self, link: _Link) -> None:
        """Ping on ``reliable`` until the heartbeat expires or the connection ends."""

        async def ping() -> None:
            try:
                link.reliable.send(messages.ping(self.wall_ms()))
            except InvalidStateError:
                raise ConnectionEnded("the reliable channel closed") from None

        # Set-up traffic counted as life: the heartbeat starts when the channels are open.
        await self.heartbeat_loop(ping, lambda s: wait_ended(link.ended, s), self.ping_interval, self.ping_timeout)
        raise ConnectionEnded(link.ended.result())

    # --- accounting ------------------------------------------------------------------------

    def handle(self, link: _Link, payload: object, received_ms: float, channel: str) -> None:
        """Account one decoded channel message."""
        if isinstance(payload, dict) and channel == RELIABLE and "seq" not in payload:  # a control message
            if (stamp := number_of(payload, PONG)) is not None:
                self.rtt_ms = received_ms - stamp
                return
            if self.handle_reset(payload, RELIABLE):
                return
            if LIVE in payload:
                link.live.start(payload[LIVE])
                return
            if isinstance(payload.get(CLOSING), str):  # the server says why it ends the peer
                link.end(f"server closed the peer: {payload[CLOSING][:200]}")
                return
        env = parse_envelope(payload)
        if channel == UNRELIABLE:
            link.live.offer(env, received_ms)
            return
        self.on_envelope(env, received_ms, channel)
