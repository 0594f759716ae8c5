"""The HTTP/3 listener's UDP socket, with the datagram faults applied.

The ``loss``, ``reorder`` and ``duplicate`` faults act on every UDP datagram through the
listener's socket, both ways, so that QUIC's own loss recovery has to repair the stream
(see :mod:`servers.quic.server`).

New connections are admitted by :class:`Admission`: a flood of Initial packets (each of which
would make aioquic allocate a connection and start a TLS handshake) costs a bounded number of
half-open connections, and past a few of them new clients must prove their address with a
Retry (RFC 9000 §8.1.2), which a spoofing or fire-and-forget flood cannot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import Enum
from typing import Any, TypeVar, cast

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.asyncio.server import QuicServer
from aioquic.quic.packet import QuicPacketType, pull_quic_header
from aioquic.quic.retry import QuicRetryTokenHandler

from rtplay.compat.aioquic import (
    QuicBuffer,
    connection_count,
    handshake_complete,
    host_cid_length,
    protocol_for,
    server_protocols,
    use_retry,
)
from rtplay.protocol.udpfaults import DatagramShaper

Fate = Callable[[], tuple[bool, bool, bool]]
"""(drop, reorder, duplicate) for the next datagram."""

#: The fate of a datagram when no fault acts on the path.
UNHARMED = (False, False, False)
Address = Any  # whatever the socket gives: (host, port) or (host, port, flow, scope)
Datagram = tuple[bytes, Address]
P = TypeVar("P", bound=QuicConnectionProtocol)

log = logging.getLogger(__name__)

#: Handshakes in progress before new clients must answer a Retry first. A playground has a
#: handful of WebTransport clients; 8 lets them all connect at once without the extra round
#: trip, while a flood gets no more than 8 connections for free.
RETRY_ABOVE_HANDSHAKES = 8

#: Handshakes in progress at most: Initials for new connections beyond are dropped (the client
#: retransmits). Each costs aioquic a connection and TLS state (tens of KiB) until it
#: completes or times out, so 64 bounds a flood's memory to a few MiB.
MAX_HANDSHAKES = 64

#: Retry packets sent per second at most. Each costs an AEAD seal and a packet (~50 µs in
#: Python): a flood answered in full would eat the event loop every transport shares.
#: 500/s is hundreds of new WebTransport clients a second; beyond it Initials are dropped
#: and a real client's retransmission gets through a moment later.
MAX_RETRIES_PER_S = 500

#: Dropped Initials per log line: a flood is reported, not logged packet by packet.
DROP_LOG_EVERY = 10_000

#: RFC 9000 §14.1: a client Initial is padded to at least 1200 bytes; smaller ones never
#: open a connection (aioquic ignores them too).
MIN_INITIAL_BYTES = 1200


class InitialVerdict(Enum):
    ACCEPT = "accept"
    RETRY = "retry"
    DROP = "drop"


class Admission:
    """What to do with an Initial that would open a new connection. Pure: counts passed in."""

    def __init__(
        self,
        retry_above: int = RETRY_ABOVE_HANDSHAKES,
        maximum: int = MAX_HANDSHAKES,
        retries_per_s: int = MAX_RETRIES_PER_S,
    ) -> None:
        self.retry_above = retry_above
        self.maximum = maximum
        self.retries_per_s = retries_per_s
        self.dropped = 0
        """Initials dropped (too many handshakes in progress, or over the Retry budget)."""
        self._second = 0.0
        self._retries = 0

    def decide(self, in_progress: int, has_token: bool, now: float) -> InitialVerdict:
        """``in_progress`` handshakes now; ``has_token``: the client answered a Retry."""
        if in_progress >= self.maximum:
            self.dropped += 1
            return InitialVerdict.DROP
        if has_token:
            return InitialVerdict.RETRY  # validate its token (cheap, and it proved its address)
        if in_progress < self.retry_above:
            return InitialVerdict.ACCEPT
        if now - self._second >= 1.0:
            self._second, self._retries = now, 0
        if self._retries >= self.retries_per_s:
            self.dropped += 1
            return InitialVerdict.DROP
        self._retries += 1
        return InitialVerdict.RETRY


class _ImpairedPath:
    """Moves datagrams to ``deliver`` through a :class:`DatagramShaper`; flushes late holds."""

    def __init__(self, fate: Fate, deliver: Callable[[bytes, Address], None]) -> None:
        self._fate = fate
        self._deliver = deliver
        self._shaper: DatagramShaper[Datagram] = DatagramShaper()
        self._timer: asyncio.TimerHandle | None = None
        self._loop = asyncio.get_running_loop()

    def __call__(self, data: bytes, addr: Address) -> None:
        fate = self._fate()
        if fate == UNHARMED and self._shaper.deadline is None:  # no fault, nothing held back
            self._deliver(data, addr)
            return
        for datagram in self._shaper.push((data, addr), fate, self._loop.time()):
            self._deliver(*datagram)
        deadline = self._shaper.deadline
        if deadline is not None and self._timer is None:
            self._timer = self._loop.call_at(deadline, self._flush)

    def _flush(self) -> None:
        self._timer = None
        for datagram in self._shaper.due(self._loop.time()):
            self._deliver(*datagram)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _ImpairedTransport(asyncio.DatagramTransport):
    """The listener's socket as its QUIC connections see it: sends go through the faults."""

    def __init__(self, inner: asyncio.DatagramTransport, fate: Fate) -> None:
        super().__init__()
        self._inner = inner
        self._path = _ImpairedPath(fate, self._send)

    def _send(self, data: bytes, addr: Address) -> None:
        if not self._inner.is_closing():  # a stopped listener sends nothing, like a dead one
            self._inner.sendto(data, addr)

    def sendto(self, data: Any, addr: Address = None) -> None:
        self._path(bytes(data), addr)

    def close(self) -> None:
        self._path.cancel()
        self._inner.close()

    def abort(self) -> None:
        self.close()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)


class ImpairedQuicServer(QuicServer):
    """aioquic's QUIC server with the fault path wrapped around its receive and send."""

    def __init__(self, *, fate: Fate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fate = fate
        self._inbound = _ImpairedPath(fate, self._admit)
        self.socket_closed = asyncio.Event()
        """Set once the UDP socket is really closed (asyncio closes it a loop step later)."""
        self.admission = Admission()
        self._clock = asyncio.get_running_loop().time
        self._retry_handler = QuicRetryTokenHandler()
        self._handshaking: set[QuicConnectionProtocol] = set()
        """Connections created whose handshake had not completed when last looked at."""

    def _admit(self, data: bytes, addr: Address) -> None:
        """Hand ``data`` to aioquic, unless it opens a connection :class:`Admission` refuses."""
        try:
            header = pull_quic_header(QuicBuffer(data=data), host_cid_length=host_cid_length(self))
        except ValueError:
            return
        opens = (
            header.packet_type == QuicPacketType.INITIAL
            and len(data) >= MIN_INITIAL_BYTES
            and protocol_for(self, header.destination_cid) is None
        )
        if not opens:
            super().datagram_received(data, addr)
            return
        verdict = self.admission.decide(self.handshakes_in_progress(), bool(header.token), self._clock())
        if verdict is InitialVerdict.DROP:
            if self.admission.dropped % DROP_LOG_EVERY == 1:  # a flood: one line per 10,000 drops
                log.warning("QUIC: Initial flood? %d new connections refused so far", self.admission.dropped)
            return
        # aioquic validates tokens and sends Retries when it has a handler; which to use is
        # decided here, per packet.
        use_retry(self, self._retry_handler if verdict is InitialVerdict.RETRY else None)
        before = connection_count(self)
        super().datagram_received(data, addr)
        if connection_count(self) > before:
            if (protocol := protocol_for(self, header.destination_cid)) is not None:
                self._handshaking.add(protocol)

    def handshakes_in_progress(self) -> int:
        """Connections still handshaking (and still known to the server)."""
        live = set(server_protocols(self))
        self._handshaking = {p for p in self._handshaking if p in live and not handshake_complete(p)}
        return len(self._handshaking)

    def connection_lost(self, exc: Exception | None) -> None:
        self.socket_closed.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        inner = cast(asyncio.DatagramTransport, transport)
        super().connection_made(_ImpairedTransport(inner, self._fate))

    def datagram_received(self, data: bytes | str, addr: Address) -> None:
        self._inbound(bytes(data) if isinstance(data, bytes) else data.encode(), addr)

    def connections(self, kind: type[P]) -> list[P]:
        """Live QUIC connections of type ``kind``."""
        return [p for p in server_protocols(self) if isinstance(p, kind)]

    def close(self) -> None:
        self._inbound.cancel()
        super().close()

