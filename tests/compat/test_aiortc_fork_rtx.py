"""SCTP loss recovery (RFC 9260 §6.3, §7.2.4; RFC 3758 §3.5) on a sender fed SACKs by hand,
then on two real associations under 20 % loss both ways."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import aiortc
import pytest
from aiortc import RTCDataChannel
from aiortc import rtcsctptransport as sctp

from rtplay.compat import IncompatibleLibrary
from rtplay.compat import aiortc_fork_rtx as aiortc_rtx
from rtplay.compat.aiortc import lighten
from tests.compat.rtc_pair import channel_pair, count_packets
from tests.conftest import wait_until

RELIABLE, UNRELIABLE = 1, 3  # stream ids


class Wire:
    """Stands in for the DTLS transport under an association: keeps every SCTP packet sent."""

    state = "connected"

    def __init__(self) -> None:
        self.packets: list[bytes] = []

    async def _send_data(self, data: bytes) -> None:
        self.packets.append(data)

    def chunks(self, since: int = 0) -> list[sctp.Chunk]:
        """The chunks of the packets sent from packet number ``since`` on."""
        return [c for p in self.packets[since:] for c in sctp.parse_packet(p)[3]]


@asynccontextmanager
async def sender(recovery: bool) -> AsyncIterator[tuple[sctp.RTCSctpTransport, Wire]]:
    """An established association with no peer: its SACKs are written by the test."""
    wire = Wire()
    transport = sctp.RTCSctpTransport(cast(Any, wire))
    transport._association_state = sctp.RTCSctpTransport.State.ESTABLISHED
    transport._remote_port = 5000
    transport._remote_partial_reliability = True
    if recovery:
        aiortc_rtx.enable(transport)
    try:
        yield transport, wire
    finally:
        transport._t3_cancel()


def sack(cumulative: int, *gaps: tuple[int, int]) -> sctp.SackChunk:
    """A SACK: the cumulative TSN and gap blocks as offsets from it (RFC 9260 §3.3.4)."""
    chunk = sctp.SackChunk()
    chunk.cumulative_tsn = cumulative % sctp.SCTP_TSN_MODULO
    chunk.advertised_rwnd = 1 << 20
    chunk.gaps = list(gaps)
    return chunk


async def send(transport: sctp.RTCSctpTransport, kinds: str) -> int:
    """Queue one message per letter (``r`` reliable and ordered, ``u`` unordered with no
    retransmission, as the server's two channels); return the first one's TSN."""
    first = transport._local_tsn
    for kind in kinds:
        if kind == "r":
            await transport._send(RELIABLE, sctp.WEBRTC_STRING, b"reliable")
        else:
            await transport._send(UNRELIABLE, sctp.WEBRTC_STRING, b"unreliable", max_retransmits=0, ordered=False)
    return first


def chunk(transport: sctp.RTCSctpTransport, tsn: int) -> sctp.DataChunk:
    [found] = [c for c in transport._sent_queue if c.tsn == tsn % sctp.SCTP_TSN_MODULO]
    return found


def forward_tsns(wire: Wire) -> list[int]:
    return [c.cumulative_tsn for c in wire.chunks() if isinstance(c, sctp.ForwardTsnChunk)]


async def settle() -> None:
    """Let the tasks a timer scheduled run (they only await the recording wire)."""
    for _ in range(3):
        await asyncio.sleep(0)


# --- FORWARD TSN over a lost packet of both channels' messages -------------------------------


@pytest.mark.parametrize("recovery", [True, False])
async def test_one_forward_tsn_passes_a_lost_packet_of_reliable_and_unreliable_messages(recovery: bool) -> None:
    """A lost packet carried reliable and unreliable messages in turn. Once the reliable ones
    are repaired, one FORWARD TSN takes the peer past all of it; aiortc's own stops at every
    chunk the peer already holds, a round trip per unreliable message (RFC 3758 §3.5 C2)."""
    async with sender(recovery) as (transport, wire):
        t = await send(transport, "rururu" + "rrrr")  # t..t+5 lost, t+6..t+9 arrive
        for last in (7, 8, 9):  # three SACKs, each newly acknowledging one more: three misses
            await transport._receive_sack_chunk(sack(t - 1, (7, last)))
        assert [chunk(transport, t + i)._retransmit for i in (0, 2, 4)] == [False] * 3  # resent
        assert all(chunk(transport, t + i)._abandoned for i in (1, 3, 5))
        # The resent reliable ones arrived: the peer holds all but the abandoned.
        await transport._receive_sack_chunk(sack(t, (2, 2), (4, 4), (6, 9)))
        if recovery:
            assert forward_tsns(wire)[-1] == (t + 9) % sctp.SCTP_TSN_MODULO
        else:  # aiortc: only up to the first abandoned chunk
            assert forward_tsns(wire)[-1] == (t + 1) % sctp.SCTP_TSN_MODULO


async def test_the_forward_tsn_never_passes_a_reliable_chunk_the_peer_lacks() -> None:
    async with sender(True) as (transport, wire):
        t = await send(transport, "urur" + "rrr")  # t..t+3 lost
        for last in (5, 6, 7):
            await transport._receive_sack_chunk(sack(t - 1, (5, last)))
        await transport._receive_sack_chunk(sack(t - 1, (2, 2), (5, 7)))  # t+1 repaired, t+3 not yet
        assert forward_tsns(wire)[-1] == (t + 2) % sctp.SCTP_TSN_MODULO  # stops before t+3
        assert chunk(transport, t + 3)._acked is False


async def test_a_sack_moving_the_cumulative_tsn_restarts_the_timer() -> None:
    """The FORWARD TSN already took the acknowledged chunks out of the sent queue, so the SACK
    that confirms it removes none there; it still acknowledges the earliest outstanding TSN,
    so the T3 timer restarts for the next one (RFC 9260 §6.3.2 R3) instead of expiring early."""
    async with sender(True) as (transport, wire):
        t = await send(transport, "urrrr")
        for last in (2, 3, 4):  # t lost and given up; t+1..t+3 acknowledged
            await transport._receive_sack_chunk(sack(t - 1, (2, last)))
        assert forward_tsns(wire)[-1] == (t + 3) % sctp.SCTP_TSN_MODULO
        timer = transport._t3_handle
        await transport._receive_sack_chunk(sack(t + 3))
        assert [c.tsn for c in transport._sent_queue] == [(t + 4) % sctp.SCTP_TSN_MODULO]
        assert transport._t3_handle is not None and transport._t3_handle is not timer


# --- RTT samples and the RTO ------------------------------------------------------------------


@pytest.mark.parametrize("recovery", [True, False])
async def test_a_chunk_acknowledged_long_ago_gives_no_rtt_sample(recovery: bool) -> None:
    """A gap block acknowledged the reliable chunks at once; the cumulative point reached them
    only after the lost unreliable chunk was given up, here 3 s later. That wait is no round
    trip (RFC 9260 §6.3.1 C5); aiortc took it for one and set the RTO to 9 s."""
    async with sender(recovery) as (transport, _wire):
        t = await send(transport, "urrrr")
        for last in (3, 4, 5):  # t lost; t+1..t+4 acknowledged at once
            await transport._receive_sack_chunk(sack(t - 1, (2, last)))
        for waiting in transport._sent_queue:
            waiting._sent_time -= 3.0  # what the clock would say 3 s later
        await transport._receive_sack_chunk(sack(t + 4))
        if recovery:
            assert transport._rto == aiortc_rtx.RTO_MIN_S  # samples of ~0 s, floored
        else:
            assert transport._rto > 8


# --- miss indications for a retransmission -----------------------------------------------------


async def test_a_retransmission_is_struck_only_by_sacks_for_chunks_sent_after_it() -> None:
    """SACKs the peer sent before the retransmission could arrive report the chunk missing
    still: they are no evidence, and aiortc resent the chunk on every third of them. A SACK
    newly acknowledging a chunk sent after the retransmission is, so a lost retransmission is
    found by fast retransmit, not the T3 timer (the RACK rule, RFC 8985 §6.2)."""
    async with sender(True) as (transport, _wire):
        t = await send(transport, "r" * 10)
        for last in (2, 3, 4):  # t lost: three misses, fast retransmit
            await transport._receive_sack_chunk(sack(t - 1, (2, last)))
        lost = chunk(transport, t)
        assert lost._sent_count == 2
        for last in (5, 6, 7):  # stale: these chunks left before the retransmission
            await transport._receive_sack_chunk(sack(t - 1, (2, last)))
        assert lost._sent_count == 2
        await send(transport, "rrr")  # sent after the retransmission
        for last in (11, 12, 13):  # the retransmission was lost too
            await transport._receive_sack_chunk(sack(t - 1, (2, last)))
        assert lost._sent_count == 3


async def test_aiortc_resends_on_stale_sacks() -> None:
    async with sender(False) as (transport, _wire):
        t = await send(transport, "r" * 10)
        for last in (2, 3, 4, 5, 6, 7):
            await transport._receive_sack_chunk(sack(t - 1, (2, last)))
        assert chunk(transport, t)._sent_count == 3  # the defect the test above guards against


# --- T3 expiry ---------------------------------------------------------------------------------


@pytest.mark.parametrize("recovery", [True, False])
async def test_a_timeout_resends_only_what_the_peer_lacks(recovery: bool) -> None:
    """RFC 9260 §6.3.3 E3 retransmits outstanding chunks; a gap-acknowledged one is not
    outstanding (§1.3). aiortc resent the lot."""
    async with sender(recovery) as (transport, wire):
        t = await send(transport, "r" * 6)
        await transport._receive_sack_chunk(sack(t - 1, (2, 6)))  # only t missing
        before = len(wire.packets)
        transport._t3_expired()
        await settle()
        resent = [c.tsn for c in wire.chunks(before) if isinstance(c, sctp.DataChunk)]
        if recovery:
            assert resent == [t]
        else:
            assert len(resent) == 6


def test_the_start_up_check_refuses_another_aiortc_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "1.17.0")
    with pytest.raises(IncompatibleLibrary, match="loss recovery"):
        aiortc_rtx.check()


# --- two real associations under loss ----------------------------------------------------------

LOSS = 0.2
PAIRS = 600  # messages per channel: 0.6 s at 1000 msg/s, in turns of 10 as the hub's timer sends them


async def test_under_20_percent_loss_each_way_every_reliable_message_arrives_once_in_order() -> None:
    """Both channels of the server at 1000 msg/s through a path losing 20 % of the datagrams
    either way: the reliable channel gets all, in order, once (the FORWARD TSNs that pass
    acknowledged chunks lose none of them); the unreliable one what survived, once each."""
    rng = random.Random(7)
    async with channel_pair(prepare=lighten) as pair:
        unreliable: RTCDataChannel = pair.sender.createDataChannel("u", ordered=False, maxRetransmits=0)
        opened = asyncio.Event()
        unreliable.on("open", opened.set)
        await asyncio.wait_for(opened.wait(), 10)
        count_packets(pair.sender, drop=lambda packet: rng.random() < LOSS)
        count_packets(pair.receiver, drop=lambda packet: rng.random() < LOSS)
        for turn in range(PAIRS // 10):
            for i in range(turn * 10, turn * 10 + 10):
                pair.channel.send(f"r{i}")
                unreliable.send(f"u{i}")
            await asyncio.sleep(0.01)

        def reliable() -> list[str]:
            return [m for m in pair.received if m.startswith("r")]

        await wait_until(lambda: len(reliable()) >= PAIRS, what="every reliable message")
    assert reliable() == [f"r{i}" for i in range(PAIRS)]
    others = [m for m in pair.received if m.startswith("u")]
    assert len(set(others)) == len(others) and set(others) <= {f"u{i}" for i in range(PAIRS)}
