"""SCTP chunk bundling: fewer packets for a burst of messages, every message intact and in order."""

from __future__ import annotations

import asyncio

import pytest

from rtplay.compat import aiortc_fork_sctp as aiortc_sctp
from tests.compat.rtc_pair import channel_pair, count_packets
from tests.conftest import wait_until

BURST = 60


@pytest.mark.parametrize("bundle", [True, False])
@pytest.mark.parametrize("ordered", [True, False])
async def test_a_burst_is_bundled_into_few_packets_and_arrives_whole(bundle: bool, ordered: bool) -> None:
    async with channel_pair(ordered) as pair:
        sender, channel, received = pair.sender, pair.channel, pair.received
        if bundle:
            aiortc_sctp.enable(sender.sctp)
        packets = count_packets(sender)
        sent = [f'{{"seq":{i},"data":"{"." * 40}"}}' for i in range(BURST)]
        for text in sent:  # one synchronous burst, as when several envelopes are due at once
            channel.send(text)
        await wait_until(lambda: len(received) >= BURST, what="the whole burst")
    assert received == sent  # each message its own data-channel message, none merged or split
    if bundle:
        assert len(packets) <= BURST // 5
        assert max(map(len, packets)) <= 1189 + 64  # an SCTP packet within aiortc's limit, plus DTLS framing
    else:
        assert len(packets) >= BURST  # aiortc's own: a packet per message


async def test_a_message_larger_than_a_packet_still_arrives_whole() -> None:
    async with channel_pair() as pair:
        channel, received = pair.channel, pair.received
        aiortc_sctp.enable(pair.sender.sctp)
        big = "x" * 5000  # fragmented over several DATA chunks
        channel.send("a")
        channel.send(big)
        channel.send("b")
        await wait_until(lambda: len(received) >= 3, what="three messages")
    assert received == ["a", big, "b"]


def flushes_pending() -> int:
    """Flush tasks scheduled and not yet run (aiortc's per message, or rtplay's per loop turn)."""
    names = {"_data_channel_flush", "_flush_soon"}
    return sum(1 for t in asyncio.all_tasks() if t.get_coro().__qualname__.rsplit(".", 1)[-1] in names)


async def test_a_burst_schedules_one_flush_not_one_per_message() -> None:
    async with channel_pair() as pair:
        aiortc_sctp.enable(pair.sender.sctp)
        for i in range(BURST):  # one loop turn
            pair.channel.send(f"m{i}")
        assert flushes_pending() == 1
        await wait_until(lambda: len(pair.received) >= BURST, what="the whole burst")
        pair.channel.send("after")  # the next turn gets a flush of its own
        await wait_until(lambda: len(pair.received) > BURST, what="the next message")
    assert pair.received == [f"m{i}" for i in range(BURST)] + ["after"]


async def test_text_goes_straight_to_the_direct_handler_and_the_rest_to_listeners() -> None:
    async with channel_pair() as pair:
        direct: list[str] = []
        listened: list[object] = []
        (remote,) = pair.receiver.sctp._data_channels.values()  # type: ignore[union-attr]
        remote.remove_all_listeners("message")  # the pair's own collector
        remote.on("message", listened.append)
        aiortc_sctp.deliver_text(remote, direct.append)
        for message in ("a", b"\x01", "é", "", "z"):
            pair.channel.send(message)
        await wait_until(lambda: len(direct) + len(listened) >= 5, what="five messages")
    assert direct == ["a", "é", "z"]  # each once, in order, decoded
    assert listened == [b"\x01", ""]  # binary and empty text: aiortc's own path, unchanged


async def test_a_flush_after_the_transport_closed_ends_quietly() -> None:
    """At thousands of messages a second a flush can find the DTLS transport closed under it
    (a peer dropped): that is the association's end, not an error nobody will ever read."""
    async with channel_pair() as pair:
        aiortc_sctp.enable(pair.sender.sctp)
        dtls = pair.sender.sctp.transport  # type: ignore[union-attr]

        async def closed(data: bytes) -> None:
            raise ConnectionError("Cannot send encrypted data, not connected")

        dtls._send_data = closed
        pair.channel.send("into the void")
        [flush] = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__.endswith("_flush_soon")]
        await asyncio.wait([flush])
        assert flush.exception() is None


@pytest.mark.parametrize("closed", [True, False])
async def test_a_retransmission_after_the_transport_closed_ends_quietly(closed: bool) -> None:
    """aiortc's retransmission timer runs ``_transmit`` as a task nobody awaits: when the DTLS
    transport has closed under the association (5,000 msg/s, a peer gone), the retransmission
    cannot go anywhere, and must not end in "Task exception was never retrieved". Nor while
    it closes: ``stop()`` shuts the SSL session down before the state says closed."""
    async with channel_pair() as pair:
        sctp = pair.sender.sctp
        assert sctp is not None
        aiortc_sctp.enable(sctp)
        if closed:
            await sctp.transport.stop()  # the DTLS transport closes; the association does not know yet
        else:
            sctp.transport._ssl.shutdown()  # as stop() does first; the state still says connected
        pair.channel.send("unacknowledged")  # sent into the closed transport: awaiting retransmission
        await wait_until(lambda: len(sctp._sent_queue) == 1, what="the message in flight")
        before = asyncio.all_tasks()
        sctp._t3_expired()  # the retransmission timer fires
        (transmit,) = [t for t in asyncio.all_tasks() - before if t.get_coro().__qualname__.endswith("_transmit")]
        await asyncio.wait([transmit])
        assert transmit.exception() is None
        if not closed:  # let stop() finish what it started, as it would have
            await sctp.transport.stop()
            await wait_until(lambda: sctp.transport.state == "closed", what="the DTLS transport closed")
