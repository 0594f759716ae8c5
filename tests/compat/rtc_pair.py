"""Two in-process aiortc peers on 127.0.0.1 with one open data channel, for SCTP-level tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection

from rtplay.compat.aioice import gather_on


@dataclass
class Pair:
    """The sending peer, its channel, the receiving peer and what it received, in order."""

    sender: RTCPeerConnection
    channel: RTCDataChannel
    receiver: RTCPeerConnection
    received: list[str] = field(default_factory=list)
    arrived_at: list[float] = field(default_factory=list)
    """The loop's time as each message reached the receiver."""
    arrival: asyncio.Event = field(default_factory=asyncio.Event)
    """Set at every arrival (clear it to wait for the next)."""

    def on_message(self, message: str) -> None:
        self.received.append(message)
        self.arrived_at.append(asyncio.get_running_loop().time())
        self.arrival.set()


@asynccontextmanager
async def channel_pair(
    ordered: bool = True, prepare: Callable[[RTCPeerConnection], None] | None = None
) -> AsyncIterator[Pair]:
    """Open one channel from ``sender`` to ``receiver``; ``prepare`` runs on each peer once it
    has its SCTP transport, before the association starts."""
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    channel = sender.createDataChannel("burst", ordered=ordered, **({} if ordered else {"maxRetransmits": 0}))
    pair = Pair(sender, channel, receiver)
    receiver.on("datachannel", lambda ch: ch.on("message", pair.on_message))
    opened = asyncio.Event()
    channel.on("open", opened.set)
    try:
        with gather_on("127.0.0.1"):
            await sender.setLocalDescription(await sender.createOffer())
            await receiver.setRemoteDescription(sender.localDescription)
            if prepare is not None:
                prepare(sender)
                prepare(receiver)
            await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        await asyncio.wait_for(opened.wait(), 10)
        yield pair
    finally:
        await sender.close()
        await receiver.close()


def is_data(packet: bytes) -> bool:
    """An SCTP packet whose first chunk is DATA (RFC 9260 §3.3.1: chunk type 0)."""
    return len(packet) > 12 and packet[12] == 0


def count_packets(pc: RTCPeerConnection, drop: Callable[[bytes], bool] = lambda packet: False) -> list[bytes]:
    """Wrap a peer's DTLS send: every SCTP packet it sends from now on, in order;
    ``drop(packet)`` True loses that packet on the way, as a lossy path would."""
    assert pc.sctp is not None
    dtls: Any = pc.sctp.transport
    packets: list[bytes] = []
    send = dtls._send_data

    async def counting(data: bytes) -> None:
        packets.append(data)
        if not drop(data):
            await send(data)

    dtls._send_data = counting
    return packets
