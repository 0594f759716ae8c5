"""Delayed SACKs (RFC 9260 §6.2): a SACK per two packets, at once on a gap, every message intact."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

import pytest
from aiortc import RTCPeerConnection
from aiortc import rtcsctptransport as sctp
from hypothesis import given
from hypothesis import strategies as st

from rtplay.compat import aiortc_fork_sack as aiortc_sack
from rtplay.compat.aiortc import lighten
from rtplay.compat.aiortc_fork_sack import ACK_DELAY_S, DelayedAck
from tests.compat.rtc_pair import Pair, channel_pair, count_packets, is_data
from tests.conftest import wait_until

# --- the rule, as pure logic -----------------------------------------------------------------


def test_every_second_packet_is_acknowledged_at_once() -> None:
    ack = DelayedAck()
    assert ack.on_packet(10.0, gap=False, duplicate=False) is False
    assert ack.deadline == pytest.approx(10.0 + ACK_DELAY_S)
    assert ack.on_packet(10.001, gap=False, duplicate=False) is True
    ack.sent()
    assert (ack.owed, ack.deadline) == (0, None)
    assert ack.on_packet(10.002, gap=False, duplicate=False) is False


def test_the_deadline_runs_from_the_first_unacknowledged_packet() -> None:
    ack = DelayedAck(every=3, delay_s=0.2)
    ack.on_packet(1.0, gap=False, duplicate=False)
    ack.on_packet(1.15, gap=False, duplicate=False)
    assert ack.deadline == pytest.approx(1.2)


def test_a_gap_its_persistence_and_its_repair_are_acknowledged_at_once() -> None:
    ack = DelayedAck()
    assert ack.on_packet(0.0, gap=True, duplicate=False) is True  # a loss: tell the sender now
    ack.sent()
    assert ack.on_packet(0.001, gap=True, duplicate=False) is True  # still missing (fast retransmit counts these)
    ack.sent()
    assert ack.on_packet(0.002, gap=False, duplicate=False) is True  # the gap just closed
    ack.sent()
    assert ack.on_packet(0.003, gap=False, duplicate=False) is False  # back to delaying


def test_a_duplicate_is_acknowledged_at_once() -> None:
    ack = DelayedAck()
    assert ack.on_packet(0.0, gap=False, duplicate=True) is True


# --- the in-order shortcut through _mark_received ------------------------------------------


def receiver_state(last: int, shortcut: bool) -> SimpleNamespace:
    state = SimpleNamespace(_last_received_tsn=last, _sack_misordered=set(), _sack_duplicates=[])
    if shortcut:
        setattr(state, aiortc_sack._STATE, object())
    return state


@given(
    start=st.sampled_from([0, 1000, 2**32 - 3]),  # 2**32 - 3: the TSN wraps around mid-run
    steps=st.lists(st.integers(-3, 4), max_size=40),
)
def test_the_shortcut_marks_tsns_exactly_as_aiortc_does(start: int, steps: list[int]) -> None:
    aiortc_sack.enable(SimpleNamespace())  # installs the shortcut (and SACK delay) process-wide
    original = aiortc_sack._ORIGINAL["_mark_received"]
    ours, theirs = receiver_state(start, True), receiver_state(start, False)
    tsn = start
    for step in steps:  # in order (1), repeated (<= 0), or skipping ahead (> 1)
        tsn = (tsn + step) % sctp.SCTP_TSN_MODULO
        assert sctp.RTCSctpTransport._mark_received(ours, tsn) == original(theirs, tsn)
        assert (ours._last_received_tsn, ours._sack_misordered, ours._sack_duplicates) == (
            theirs._last_received_tsn, theirs._sack_misordered, theirs._sack_duplicates)


# --- on real associations --------------------------------------------------------------------

MESSAGES = 40


async def send_one_by_one(pair: Pair, count: int) -> None:
    """Each message in a packet of its own: the next is sent as soon as the previous arrived."""
    for i in range(count):
        pair.arrival.clear()
        pair.channel.send(f"m{i}")
        await asyncio.wait_for(pair.arrival.wait(), 10)
        assert len(pair.received) == i + 1


def late_arrivals(pair: Pair) -> int:
    """Arrivals that came :data:`ACK_DELAY_S` or more after the one before: only after those
    can the receiver's timer have sent a SACK for a single packet (a busy machine makes some)."""
    times = pair.arrived_at
    return sum(1 for before, after in itertools.pairwise(times) if after - before >= ACK_DELAY_S)


def outstanding(pc: RTCPeerConnection) -> int:
    assert pc.sctp is not None
    return len(pc.sctp._sent_queue)


async def test_the_receiver_acknowledges_two_packets_with_one_sack() -> None:
    async with channel_pair(prepare=lighten) as pair:
        data = count_packets(pair.sender)
        sacks = count_packets(pair.receiver)
        await send_one_by_one(pair, MESSAGES)
        # The last, odd packet is acknowledged by the timer; nothing stays in flight.
        await wait_until(lambda: outstanding(pair.sender) == 0, what="every chunk acknowledged")
    assert sum(map(is_data, data)) == MESSAGES
    # One SACK per two packets (aiortc's own: one per packet, as the test below shows); a SACK
    # for one packet only where the next came after the delay, as measured in this run.
    late = late_arrivals(pair)
    assert sum(not is_data(p) for p in sacks) <= MESSAGES // 2 + 1 + late, late
    assert late < MESSAGES // 4, f"{late} of {MESSAGES} arrivals late: the run proves little"
    assert pair.received == [f"m{i}" for i in range(MESSAGES)]


async def test_a_lost_packet_is_repaired_by_fast_retransmit_not_the_timer() -> None:
    """The gap is reported at once, so three reports trigger fast retransmit (RFC 9260 §7.2.4)
    long before the 1 s retransmission timer; every message arrives, in order."""
    async with channel_pair(prepare=lighten) as pair:
        assert pair.sender.sctp is not None
        expired: list[int] = []
        t3 = pair.sender.sctp._t3_expired
        pair.sender.sctp._t3_expired = lambda: (expired.append(1), t3())[1]
        data: list[bytes] = []

        def lose_the_fourth(packet: bytes) -> bool:
            if is_data(packet):
                data.append(packet)
                return len(data) == 4
            return False

        count_packets(pair.sender, drop=lose_the_fourth)
        burst = [f"b{i}" for i in range(8)]  # four packets after the loss: three gap reports need them all
        for i, text in enumerate(burst):  # a packet each, so the gap is reported once per packet
            pair.channel.send(text)
            await wait_until(lambda i=i: len(data) > i, what=f"message {i} sent")
        await wait_until(lambda: len(pair.received) == len(burst), what="the lost message retransmitted")
    assert pair.received == burst
    assert not expired


async def test_associations_not_enabled_keep_aiortc_acknowledging_every_packet() -> None:
    async with channel_pair() as pair:
        sacks = count_packets(pair.receiver)
        await send_one_by_one(pair, 10)
        await wait_until(lambda: outstanding(pair.sender) == 0, what="every chunk acknowledged")
    assert sum(not is_data(p) for p in sacks) >= 10
    assert getattr(pair.receiver.sctp, aiortc_sack._STATE, None) is None


def test_the_start_up_check_refuses_an_aiortc_without_the_sack_path(monkeypatch: pytest.MonkeyPatch) -> None:
    from rtplay.compat import IncompatibleLibrary, check_all

    monkeypatch.delattr(sctp.RTCSctpTransport, "_mark_received")
    with pytest.raises(IncompatibleLibrary, match="SACK internals"):
        check_all()
