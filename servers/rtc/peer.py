"""The publishing WebRTC peers: one aiortc peer per client (signaling: :mod:`servers.rtc.signal`).

Signaling is only for set-up. The client's offer creates two data channels, ``reliable``
(ordered, reliable) and ``unreliable`` (unordered, maxRetransmits=0); the server answers and
from then on the peer lives in :class:`RtcManager`, apart from the HTTP listener, so an HTTP
outage never breaks an established channel.

On ``reliable`` the peer sends, in order: ``{"reset": {"since": n, "first": f}}`` when the
resume point was evicted, ``{"live": L}`` (the first seq the unreliable channel carries on
this connection), the backlog after ``since``, then every live envelope — always one
envelope per message, as a browser's ``onmessage`` expects (messages ready at once still
share SCTP packets, and the client acknowledges every second packet: see
:func:`rtplay.compat.aiortc.lighten`); it answers
``{"ping": t}`` with ``{"pong": t}``. On ``unreliable`` it sends live envelopes only, one
per message. The resume cursor is the query parameter: ``POST /rtc/offer?since=N``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidStateError

from rtplay.compat.aioice import gather_on
from rtplay.compat.aiortc import FaultyPath, ice_transport_of, lighten
from rtplay.protocol import messages, strictjson
from rtplay.protocol.envelope import Envelope
from rtplay.protocol.ice import ensure_on_host
from servers.core.context import ServerContext, Throttle, hold_envelope
from servers.rtc.admission import HALF_OPEN_TIMEOUT_S, Admission, NoRoom
from servers.rtc.ice import Offer, OfferError

log = logging.getLogger(__name__)

TRANSPORT = "rtc"
RELIABLE = "reliable"
UNRELIABLE = "unreliable"
LABELS = (RELIABLE, UNRELIABLE)

#: Peers kept at once (set-ups in progress included). Each costs a UDP socket, DTLS and
#: SCTP state and a task; 32 is far more than a playground runs and caps a runaway script.
MAX_PEERS = 32

#: From the answer to both channels open: the half-open deadline (see servers.rtc.admission).
SETUP_TIMEOUT_S = HALF_OPEN_TIMEOUT_S

#: Client→server channel message size: ours are ``{"ping": <float>}``, ~30 bytes.
MAX_CHANNEL_MESSAGE = 4 * 1024

#: Bytes queued in a channel (``bufferedAmount``, above SCTP's congestion window) before
#: the sender waits for it to drain to the low mark. 256 KiB is ~2500 envelopes: seconds
#: of playground traffic, yet only a small slice of memory per peer.
HIGH_WATER_BYTES = 256 * 1024
LOW_WATER_BYTES = 64 * 1024

#: How long ``reliable`` may stay above the high mark before the peer counts as too far
#: behind and is closed (the client then resumes from its cursor like after any drop).
DRAIN_TIMEOUT_S = 5.0

#: How often a stalled peer looks whether the stall is over (as the HTTP streams do).
STALL_POLL_S = 0.05

#: Grace for aiortc to send its SCTP ABORT and close sockets when a peer is closed.
CLOSE_TIMEOUT_S = 2.0


class TooManyPeers(Exception):
    """:data:`MAX_PEERS` reached (answered 503)."""


class PeerClosed(Exception):
    """Ends a peer with a reason."""


def parse_ping(message: object) -> int | float:
    """The stamp of a ``{"ping": <number>}`` channel message; :class:`JsonError` (a ValueError)
    for anything else, whatever the message (see :func:`rtplay.protocol.messages.parse_ping`)."""
    if not isinstance(message, str) or len(message) > MAX_CHANNEL_MESSAGE:
        raise strictjson.JsonError('expected a short text message {"ping": <number>}')
    return messages.parse_ping(message)


class RtcPeer:
    """One client's publishing peer: waits for both channels, then pumps envelopes."""

    def __init__(
        self, peer_id: int, ctx: ServerContext, pc: RTCPeerConnection, since: int,
        on_open: Callable[[RtcPeer], None] = lambda peer: None,
    ) -> None:
        self.id = peer_id
        self._on_open = on_open
        """Told once both channels are open (the peer is half-open no more)."""
        self.ctx = ctx
        self.pc = pc
        self.since = since
        self.channels: dict[str, RTCDataChannel] = {}
        self.reason = ""
        """Why the peer ended (empty while it runs)."""
        self.unreliable_skipped = 0
        """Envelopes not sent on ``unreliable`` because its buffer was full (best effort)."""
        self.path: FaultyPath | None = None
        self.throttle = Throttle(ctx, TRANSPORT)
        self.closing = asyncio.Event()
        """Set once :meth:`close` gave a reason; the manager then shuts the peer down."""
        self._open = asyncio.Event()
        self._drained = asyncio.Event()
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)

    def __repr__(self) -> str:
        return f"<RtcPeer {self.id} since={self.since}>"

    # --- aiortc callbacks ------------------------------------------------------------------

    def _on_connection_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed"):
            self.close(f"peer connection {self.pc.connectionState}")

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        label = channel.label
        if label not in LABELS or label in self.channels:
            self.close(f"unexpected data channel {label[:40]!r}")
            return
        self.channels[label] = channel
        channel.bufferedAmountLowThreshold = LOW_WATER_BYTES
        channel.on("bufferedamountlow", self._drained.set)
        channel.on("message", self._on_message)
        channel.on("close", lambda: self.close(f"client closed the {label} channel"))
        channel.on("open", self._check_open)  # remote channels usually arrive already open
        self._check_open()

    def _check_open(self) -> None:
        if all(c in self.channels and self.channels[c].readyState == "open" for c in LABELS):
            self._open.set()

    def _on_message(self, message: object) -> None:
        try:
            stamp = parse_ping(message)
        except ValueError as exc:
            self.close(f"bad channel message: {exc}")
            return
        self.ctx.faults.expire(self.ctx.clock())
        if self.ctx.faults.stalled(TRANSPORT):  # a stalled server answers nothing
            return
        reliable = self.channels.get(RELIABLE)
        if reliable is not None and reliable.readyState == "open":
            reliable.send(messages.pong(stamp))

    # --- lifecycle -------------------------------------------------------------------------

    def close(self, reason: str) -> None:
        """End the peer (from any callback, the registry, or the manager); the first reason wins."""
        if self.reason:
            return
        self.reason = reason
        log.info("rtc peer %d closing: %s", self.id, reason)
        self.closing.set()

    def abort(self) -> None:
        """The registry's drop: close abruptly (aiortc sends an SCTP ABORT)."""
        self.close("dropped by the server")

    async def serve(self) -> None:
        """Wait for both channels, then send until something ends the peer (raises PeerClosed)."""
        try:
            await asyncio.wait_for(self._open.wait(), SETUP_TIMEOUT_S)
        except TimeoutError:
            raise PeerClosed(f"channels not open within {SETUP_TIMEOUT_S:g}s") from None
        self._on_open(self)
        await self._pump()

    async def shutdown(self) -> None:
        """Free everything the peer holds: its fault path, sockets, DTLS and SCTP state."""
        if self.path is not None:
            self.path.close()
        try:
            await asyncio.wait_for(self.pc.close(), CLOSE_TIMEOUT_S)
        except TimeoutError:
            log.warning("rtc peer %d: close timed out", self.id)

    # --- sending ---------------------------------------------------------------------------

    async def _pump(self) -> None:
        broadcaster = self.ctx.broadcaster
        sub, backlog = broadcaster.subscribe(self.since)
        live_from = broadcaster.hub.last_seq + 1  # subscribe() is synchronous: no gap, no overlap
        try:
            reliable = self.channels[RELIABLE]
            await self._unstalled()  # a stalled server sends nothing, not even its greeting
            if backlog.reset is not None:
                reliable.send(backlog.reset.message())
            reliable.send(messages.live(live_from))
            last = backlog.after  # not a future cursor: after its reset the stream goes on from the head
            for env in backlog.messages:
                await hold_envelope(self.ctx, TRANSPORT, env)  # never before its own time
                await self._send_reliable(env)
                last = env.seq
            while True:
                live = await sub.get()
                if live is None:
                    self._send(reliable, messages.closing(sub.reason))  # why, before the close
                    raise PeerClosed(sub.reason)
                env = live
                if env.seq <= last:
                    continue
                await hold_envelope(self.ctx, TRANSPORT, env)
                await self._send_reliable(env)
                self._send_unreliable(env)
                last = env.seq
        finally:
            broadcaster.unsubscribe(sub)

    async def _unstalled(self) -> None:
        while self.ctx.faults.stalled(TRANSPORT):
            await asyncio.sleep(STALL_POLL_S)
            self.ctx.faults.expire(self.ctx.clock())

    async def _send_reliable(self, env: Envelope) -> None:
        """One envelope, one message."""
        channel = self.channels[RELIABLE]
        if channel.bufferedAmount > HIGH_WATER_BYTES:
            await self._drain(channel)
        await self.throttle(len(env.json))  # both channels share the path; reliable waits for it
        self._send(channel, env.json)

    def _send_unreliable(self, env: Envelope) -> None:
        channel = self.channels[UNRELIABLE]
        if channel.bufferedAmount > HIGH_WATER_BYTES:  # best effort: never wait, never queue more
            self.unreliable_skipped += 1
            return
        self._send(channel, env.json)

    def _send(self, channel: RTCDataChannel, text: str) -> None:
        if self.reason:  # closed (a drop, say) but not torn down yet: nothing more goes out
            raise PeerClosed(self.reason)
        try:
            channel.send(text)
        except InvalidStateError:
            raise PeerClosed(f"the {channel.label} channel closed") from None

    async def _drain(self, channel: RTCDataChannel) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_TIMEOUT_S
        while channel.bufferedAmount > LOW_WATER_BYTES:
            self._drained.clear()
            try:
                await asyncio.wait_for(self._drained.wait(), deadline - loop.time())
            except TimeoutError:
                raise PeerClosed(
                    f"consumer too slow: {channel.bufferedAmount} bytes buffered on {channel.label}"
                    f" for {DRAIN_TIMEOUT_S:g}s"
                ) from None


class RtcManager:
    """Owns every publishing peer, apart from the HTTP listener that signals them."""

    def __init__(self, ctx: ServerContext, *, host: str = "127.0.0.1", max_peers: int = MAX_PEERS) -> None:
        self.ctx = ctx
        self.host = host
        """The bind address: ICE gathers here only and accepts remote candidates here only."""
        self.max_peers = max_peers
        self.peers: set[RtcPeer] = set()
        self.admission = Admission()
        """Half-open peers: whom a new offer evicts when the slots are full."""
        self._pending = 0
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def count(self) -> int:
        """Live peers plus set-ups in progress."""
        return len(self.peers) + self._pending

    def _make_room(self, source: str) -> None:
        """Evict half-open peers so an offer from ``source`` gets a slot, or raise TooManyPeers.
        Peers already closing are not counted: each frees its sockets within CLOSE_TIMEOUT_S."""
        live = sum(1 for p in self.peers if not p.reason) + self._pending
        try:
            evicted = self.admission.make_room(source, live, self.max_peers, asyncio.get_running_loop().time())
        except NoRoom as exc:
            raise TooManyPeers(str(exc)) from None
        for peer in evicted:
            assert isinstance(peer, RtcPeer)
            peer.close("half-open: evicted to make room for a new offer")

    async def accept(self, offer: Offer, since: int, source: str = "") -> str:
        """Create a peer for ``offer`` (from address ``source``) resuming after ``since``;
        return the SDP answer."""
        self._make_room(source)
        self._pending += 1
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))  # [] : no STUN/TURN at all
        peer = RtcPeer(next(self._ids), self.ctx, pc, since, self.admission.done)
        try:
            with gather_on(self.host):
                try:
                    await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
                except Exception as exc:  # aiortc rejects what parse_offer let through
                    raise OfferError(f"offer rejected: {type(exc).__name__}: {str(exc)[:80]}") from None
                ice = ice_transport_of(pc)
                if ice is None:
                    raise OfferError("offer negotiates no data channels")
                peer.path = FaultyPath(ice, self._datagram_fate, asyncio.get_running_loop().time)
                lighten(pc)  # bundled DATA, delayed SACKs: fewer datagrams per message
                await pc.setLocalDescription(await pc.createAnswer())
            answer = pc.localDescription.sdp
            ensure_on_host(answer, self.host)
        except BaseException:
            await peer.shutdown()
            raise
        finally:
            self._pending -= 1
        self.peers.add(peer)
        self.admission.opened(peer, source, asyncio.get_running_loop().time())
        task = asyncio.create_task(self._run(peer), name=f"rtc-peer-{peer.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info("rtc peer %d answered (since=%d, candidates dropped: %s)", peer.id, since, offer.removed)
        return answer

    def _datagram_fate(self) -> tuple[bool, bool, bool]:
        self.ctx.faults.expire(self.ctx.clock())
        return self.ctx.faults.datagram_fate(TRANSPORT)

    async def _run(self, peer: RtcPeer) -> None:
        """Serve ``peer`` until it closes (for any reason), then free it."""
        with self.ctx.registry.track(TRANSPORT, peer.abort):
            serving = asyncio.create_task(peer.serve())
            closing = asyncio.create_task(peer.closing.wait())
            try:
                await asyncio.wait({serving, closing}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                serving.cancel()
                closing.cancel()
                outcome, _ = await asyncio.gather(serving, closing, return_exceptions=True)
                if isinstance(outcome, PeerClosed):
                    peer.close(str(outcome))
                elif isinstance(outcome, Exception):  # a bug ends this peer only
                    log.error("rtc peer %d failed", peer.id, exc_info=outcome)
                    peer.close("internal error")
                peer.close("server shutting down")  # no-op when a reason was given
                self.admission.done(peer)
                try:
                    await peer.shutdown()
                finally:  # counted until its sockets are closed; leaves registry and set at once
                    self.peers.discard(peer)

    def drop(self) -> int:
        """Abruptly close every peer (the ``drop`` fault); return how many."""
        peers = list(self.peers)
        for peer in peers:
            peer.abort()
        return len(peers)

    async def close_all(self) -> None:
        """Close every peer and wait until they are gone (server shutdown)."""
        for peer in list(self.peers):
            peer.close("server shutting down")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
