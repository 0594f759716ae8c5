"""aiortc internals rtplay relies on, in one place, checked at start-up.

Datagram faults (and the client's ``offline`` fault) act on every DTLS/SCTP datagram of a
peer, below DTLS and SCTP, so SCTP's own recovery reacts to a loss exactly as it would to a
lossy network. aiortc's ``RTCIceTransport`` exposes ``_send``/``_recv`` ("expose recv / send
methods") and DTLS calls exactly those for every datagram: :class:`FaultyPath` replaces the
two attributes, the one place where all of a peer's data passes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc import RTCIceTransport, RTCPeerConnection

from rtplay.compat import aiortc_fork_rtx as aiortc_rtx
from rtplay.compat import aiortc_fork_sack as aiortc_sack
from rtplay.compat import aiortc_fork_sctp as aiortc_sctp
from rtplay.compat import require
from rtplay.protocol.udpfaults import DatagramShaper, Fate

#: A datagram's fate when no fault touches it.
CLEAR: Fate = (False, False, False)

#: The aiortc versions whose internals this module was written against (pyproject bounds them).
TESTED = "1.16"


def check() -> None:
    """Fail with a clear message if this aiortc lacks the ICE transport's ``_send``/``_recv``."""
    # Instance attributes, set in __init__ from the ICE connection's send/recv.
    has = {"_send", "_recv"} <= set(RTCIceTransport.__init__.__code__.co_names)
    require("aiortc", aiortc.__version__, TESTED, has, "RTCIceTransport._send / _recv")
    aiortc_sctp.check()
    aiortc_sack.check()
    aiortc_rtx.check()


def lighten(pc: RTCPeerConnection) -> None:
    """Fewer datagrams per message on this peer's association: its DATA chunks bundled
    (:mod:`.aiortc_fork_sctp`) and its SACKs delayed as RFC 9260 allows (:mod:`.aiortc_fork_sack`);
    and its losses recovered as RFC 9260 asks (:mod:`.aiortc_fork_rtx`).
    Call once the peer has its SCTP transport (after ``createDataChannel`` or an offer)."""
    assert pc.sctp is not None, "the peer has no SCTP transport yet"
    aiortc_sctp.enable(pc.sctp)
    aiortc_sack.enable(pc.sctp)
    aiortc_rtx.enable(pc.sctp)


def ice_transport_of(pc: RTCPeerConnection) -> RTCIceTransport | None:
    """The ICE transport under the peer's SCTP association (one: the offer is bundled);
    None when the peer negotiated no data channels."""
    if pc.sctp is None:
        return None
    return pc.sctp.transport.transport


class FaultyPath:
    """Applies datagram faults to one ICE transport's data path, in both directions.

    STUN (ICE checks, consent
    freshness) uses the socket directly and is spared, so a loss fault exercises SCTP's
    recovery without ICE declaring the path dead.
    """

    def __init__(self, ice_transport: Any, fate: Callable[[], Fate], clock: Callable[[], float]) -> None:
        self._fate = fate
        self._clock = clock
        self._send_raw: Callable[[bytes], Awaitable[None]] = ice_transport._send
        self._recv_raw: Callable[[], Awaitable[bytes]] = ice_transport._recv
        self.outbound: DatagramShaper[bytes] = DatagramShaper()
        self.inbound: DatagramShaper[bytes] = DatagramShaper()
        self._ready: deque[bytes] = deque()
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        ice_transport._send = self.send
        ice_transport._recv = self.recv

    async def send(self, data: bytes) -> None:
        """Send one datagram through its fate."""
        fate = self._fate()
        if fate == CLEAR and self.outbound.deadline is None:  # no fault, nothing held: as is
            await self._send_raw(data)
            return
        for datagram in self.outbound.push(data, fate, self._clock()):
            await self._send_raw(datagram)
        self._arm_flush()

    def _arm_flush(self) -> None:
        deadline = self.outbound.deadline
        if deadline is None or self._flush is not None:
            return
        loop = asyncio.get_running_loop()
        self._flush = loop.call_later(max(0.0, deadline - self._clock()), self._flush_held)

    def _flush_held(self) -> None:
        self._flush = None
        for datagram in self.outbound.due(self._clock()):
            task = asyncio.ensure_future(self._send_quietly(datagram))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._arm_flush()

    async def _send_quietly(self, datagram: bytes) -> None:
        try:
            await self._send_raw(datagram)
        except ConnectionError:  # the path closed while the datagram was held: it is lost
            pass

    async def recv(self) -> bytes:
        """The next datagram that survives its fate."""
        while not self._ready:
            deadline = self.inbound.deadline
            if deadline is None:
                data = await self._recv_raw()
            else:
                try:
                    data = await asyncio.wait_for(self._recv_raw(), max(0.0, deadline - self._clock()))
                except TimeoutError:
                    self._ready.extend(self.inbound.due(self._clock()))
                    continue
            fate = self._fate()
            if fate == CLEAR and self.inbound.deadline is None:  # the common case: no fault
                return data
            self._ready.extend(self.inbound.push(data, fate, self._clock()))
        return self._ready.popleft()

    def close(self) -> None:
        """Forget a held datagram (the peer is going away)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
