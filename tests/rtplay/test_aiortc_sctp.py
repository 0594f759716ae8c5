"""SCTP chunk bundling: fewer packets for a burst of messages, every message intact and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiortc import RTCDataChannel, RTCPeerConnection

from rtplay.protocol.compat import aiortc_sctp
from rtplay.protocol.compat.aioice import gather_on
from tests.conftest import wait_until

BURST = 60


@asynccontextmanager
async def channel_pair(ordered: bool = True) -> AsyncIterator[tuple[RTCPeerConnection, RTCDataChannel, list[str]]]:
    """Two in-process peers on 127.0.0.1 with one open channel; yields (sender, channel, received)."""
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    received: list[str] = []
    receiver.on("datachannel", lambda ch: ch.on("message", received.append))
    channel = sender.createDataChannel("burst", ordered=ordered, **({} if ordered else {"maxRetransmits": 0}))
    opened = asyncio.Event()
    channel.on("open", opened.set)
    try:
        with gather_on("127.0.0.1"):
            await sender.setLocalDescription(await sender.createOffer())
            await receiver.setRemoteDescription(sender.localDescription)
            await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        await asyncio.wait_for(opened.wait(), 10)
        yield sender, channel, received
    finally:
        await sender.close()
        await receiver.close()


def count_packets(pc: RTCPeerConnection) -> list[int]:
    """Wrap the sender's DTLS send: one entry (its size) per SCTP packet sent from now on."""
    assert pc.sctp is not None
    dtls: Any = pc.sctp.transport
    sizes: list[int] = []
    send = dtls._send_data

    async def counting(data: bytes) -> None:
        sizes.append(len(data))
        await send(data)

    dtls._send_data = counting
    return sizes


@pytest.mark.parametrize("bundle", [True, False])
@pytest.mark.parametrize("ordered", [True, False])
async def test_a_burst_is_bundled_into_few_packets_and_arrives_whole(bundle: bool, ordered: bool) -> None:
    async with channel_pair(ordered) as (sender, channel, received):
        if bundle:
            aiortc_sctp.enable(sender.sctp)
        sizes = count_packets(sender)
        sent = [f'{{"seq":{i},"data":"{"." * 40}"}}' for i in range(BURST)]
        for text in sent:  # one synchronous burst, as when several envelopes are due at once
            channel.send(text)
        await wait_until(lambda: len(received) >= BURST, what="the whole burst")
    assert received == sent  # each message its own data-channel message, none merged or split
    if bundle:
        assert len(sizes) <= BURST // 5
        assert max(sizes) <= 1189 + 64  # an SCTP packet within aiortc's limit, plus DTLS framing
    else:
        assert len(sizes) >= BURST  # aiortc's own: a packet per message


async def test_a_message_larger_than_a_packet_still_arrives_whole() -> None:
    async with channel_pair() as (sender, channel, received):
        aiortc_sctp.enable(sender.sctp)
        big = "x" * 5000  # fragmented over several DATA chunks
        channel.send("a")
        channel.send(big)
        channel.send("b")
        await wait_until(lambda: len(received) >= 3, what="three messages")
    assert received == ["a", big, "b"]
