"""Loss recovery for aiortc's SCTP sender (RFC 9260 §6.3, §7.2.4; RFC 3758 §3.5), opted into
per association.

Under a steady 20 % datagram loss aiortc's reliable channel fell further behind the longer
it ran (``rtplay run --transports rtc,wt --rate 1000 --duration 15 --fault loss=20%@2s``:
3,456 of 15,016 messages delivered, then the heartbeat gave the peer up), for five reasons,
each a departure from RFC 9260 or RFC 3758 fixed here (the FORWARD TSN one, last, weighed most):

* **RTT samples that include a repair.** aiortc samples the RTT from the first chunk a SACK
  acknowledges *cumulatively*, even when a gap block had acknowledged it long before and the
  cumulative point only reached it once a lost chunk below it was repaired. The RTO climbed to
  8-10 s within seconds of loss, so a lost retransmission waited that long. RFC 9260 §6.3.1 C5:
  no sample from a retransmitted chunk, nor from a chunk r sent before a chunk ≤ r was
  retransmitted. A sample is taken here from a chunk at the SACK that first acknowledges it.
* **The 1 s RTO floor.** RFC 9260 §16 recommends RTO.Min = 1 s, a value for paths of
  unknown delay; a lost retransmission or a lost tail waits at least that. :data:`RTO_MIN_S`
  is Chromium's dcSCTP default instead.
* **Retransmissions struck by SACKs that predate them.** aiortc counts a miss indication
  (§7.2.4) for a retransmitted chunk from every SACK that reports it missing, including those
  the peer sent before the retransmission could have arrived: the chunk is retransmitted again
  and again (5-6 times per hole at 1000 msg/s), each time eating congestion window. RFC 9260
  §7.2.4 only counts SACKs that newly acknowledge a TSN sent after the missing one (HTNA); here
  a miss counts only when the SACK newly acknowledges a chunk *transmitted* after the missing
  chunk's latest transmission (the rule RACK, RFC 8985 §6.2, applies to detect a lost
  retransmission), so a lost retransmission is found by fast retransmit, not the T3 timer.
* **A T3 expiry resends what the peer already has.** aiortc marks every chunk in the sent queue,
  gap-acknowledged ones included, for retransmission at one MTU of congestion window: after a
  timeout under loss that was hundreds of chunks the peer held. RFC 9260 §6.3.3 E3 retransmits
  outstanding chunks, and §1.3 defines a gap-acknowledged TSN as not outstanding.
* **One round trip per unreliable message of a lost packet.** See
  :func:`_update_advanced_peer_ack_point`.

The SACK is also scanned once against its sorted gap blocks instead of through a set of every
TSN they cover, which cost more than the rest of the association at 1000 msg/s once a few
hundred chunks were outstanding.

``_receive_sack_chunk``, ``_t3_expired`` and ``_update_advanced_peer_ack_point`` of
``RTCSctpTransport`` are replaced process-wide by
versions that behave exactly like aiortc 1.16's unless the association was passed to
:func:`enable` (which also enables :mod:`.aiortc_fork_sctp`, whose ``_transmit`` numbers each
transmission).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiortc
from aiortc import rtcsctptransport as sctp
from aiortc.utils import uint32_gt, uint32_gte

from rtplay.compat import aiortc_fork_sctp as aiortc_sctp
from rtplay.compat import replace_methods, require, require_line
from rtplay.compat.aiortc_fork_sctp import RETRANSMITTED_AT, SENT_ORDER

log = logging.getLogger(__name__)

#: The aiortc versions whose ``_receive_sack_chunk`` / ``_t3_expired`` this module replaces.
TESTED = "1.16"

#: Lowest retransmission timeout. RFC 9260 §16 recommends 1 s; Chromium's dcSCTP uses 220 ms
#: (net/dcsctp/public/dcsctp_options.h: "larger than an expected peer delayed ack timeout",
#: its own 200 ms), and Linux's TCP floor is 200 ms (TCP_RTO_MIN). Our own peers acknowledge
#: within ``aiortc_fork_sack.ACK_DELAY_S`` (20 ms), a browser within 200 ms.
RTO_MIN_S = 0.22

#: Miss indications that mark a chunk for fast retransmit (RFC 9260 §7.2.4: "three missing reports").
MISS_THRESHOLD = 3

_STATE = "_rtplay_rtx"


class _Recovery:
    """One association's tasks started by a T3 expiry (held so that they can finish)."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()


class Acked:
    """What one SACK newly acknowledges, chunk by chunk: bytes, the latest transmission among
    them and an RTT sample (RFC 9260 §6.3.1 C4/C5). Pure: the SACK's arrival time is passed in."""

    def __init__(self, now: float, retransmitted_at: float) -> None:
        self.now = now
        self.retransmitted_at = retransmitted_at
        self.bytes = 0
        """User-data bytes newly acknowledged (what grows the congestion window, §7.2.1)."""
        self.newest = 0
        """The latest transmission (:data:`~.aiortc_fork_sctp.SENT_ORDER`) newly acknowledged."""
        self.rtt: float | None = None
        """A round-trip sample, if one of the chunks may give it."""

    def add(self, chunk: Any) -> None:
        """Count ``chunk``, unless an earlier SACK acknowledged it already."""
        if chunk._acked:
            return
        self.bytes += chunk._book_size
        self.newest = max(self.newest, getattr(chunk, SENT_ORDER, 0))
        # C5: never a retransmitted chunk, nor one sent before some chunk was retransmitted
        # (stricter than "a chunk <= r", and as cheap): its SACK may have waited for the repair.
        if (
            self.rtt is None
            and chunk._sent_count == 1
            and chunk._sent_time is not None
            and chunk._sent_time > self.retransmitted_at
        ):
            self.rtt = self.now - chunk._sent_time


def check() -> None:
    """Fail with a clear message if aiortc's SCTP recovery is not the one this module replaces."""
    cls = sctp.RTCSctpTransport
    names = set(cls.__init__.__code__.co_names)
    has = (
        all(hasattr(cls, m) for m in ("_receive_sack_chunk", "_t3_expired", "_maybe_abandon",
                                      "_update_advanced_peer_ack_point", "_flight_size_decrease"))
        # aiortc's own method (this module may have replaced it already)
        and "_update_rto" in _ORIGINAL.get("_receive_sack_chunk", cls._receive_sack_chunk).__code__.co_names
        and {"_sent_queue", "_last_sacked_tsn", "_cwnd", "_fast_recovery_exit", "_partial_bytes_acked",
             "_srtt", "_rttvar", "_rto", "_t3_handle"} <= names
        and all(hasattr(sctp, c) for c in ("SCTP_RTO_MAX", "SCTP_TSN_MODULO", "USERDATA_MAX_LENGTH"))
    )
    require_line("aiortc", aiortc.__version__, TESTED, "rtplay's fork of aiortc's SCTP loss recovery")
    require("aiortc", aiortc.__version__, TESTED, has, "RTCSctpTransport's SACK and T3 internals")
    aiortc_sctp.check()


_ORIGINAL: dict[str, Any] = {}


def enable(transport: Any) -> None:
    """Recover this association's losses as above (an ``RTCSctpTransport``); bundles it too."""
    aiortc_sctp.enable(transport)
    if not _ORIGINAL:
        check()
        replace_methods(sctp.RTCSctpTransport, _ORIGINAL, {
            "_receive_sack_chunk": _receive_sack_chunk,
            "_t3_expired": _t3_expired,
            "_update_advanced_peer_ack_point": _update_advanced_peer_ack_point,
        })
    if getattr(transport, _STATE, None) is None:
        setattr(transport, _STATE, _Recovery())


def update_rto(self: Any, rtt: float) -> None:
    """RFC 9260 §6.3.1 C2/C3 (aiortc's ``_update_rto``) with :data:`RTO_MIN_S` as the floor."""
    if self._srtt is None:
        self._rttvar = rtt / 2
        self._srtt = rtt
    else:
        self._rttvar = (1 - sctp.SCTP_RTO_BETA) * self._rttvar + sctp.SCTP_RTO_BETA * abs(self._srtt - rtt)
        self._srtt = (1 - sctp.SCTP_RTO_ALPHA) * self._srtt + sctp.SCTP_RTO_ALPHA * rtt
    self._rto = max(RTO_MIN_S, min(self._srtt + 4 * self._rttvar, sctp.SCTP_RTO_MAX))


async def _receive_sack_chunk(self: Any, chunk: Any) -> None:
    """aiortc 1.16's ``_receive_sack_chunk`` with the RTT sampling, the miss indications and the
    gap-block scan described above; the congestion window and T3 rules are aiortc's, keyed on
    the cumulative TSN advancing (RFC 9260 §6.3.2 R3, §7.2.1) rather than on chunks leaving the
    sent queue here: a FORWARD TSN may have taken acknowledged ones out already."""
    if getattr(self, _STATE, None) is None:
        await _ORIGINAL["_receive_sack_chunk"](self, chunk)
        return
    if uint32_gt(self._last_sacked_tsn, chunk.cumulative_tsn):
        return
    advanced = uint32_gt(chunk.cumulative_tsn, self._last_sacked_tsn)
    self._last_sacked_tsn = chunk.cumulative_tsn
    cwnd_fully_utilized = self._flight_size >= self._cwnd
    acked = Acked(time.time(), getattr(self, RETRANSMITTED_AT, 0.0))
    while self._sent_queue and uint32_gte(self._last_sacked_tsn, self._sent_queue[0].tsn):
        schunk = self._sent_queue.popleft()
        acked.add(schunk)
        self._flight_size_decrease(schunk)
    loss = _gap_blocks(self, chunk, acked) if chunk.gaps else False
    if acked.rtt is not None:
        update_rto(self, acked.rtt)
    _adjust_cwnd(self, advanced, acked.bytes, cwnd_fully_utilized, loss, chunk.cumulative_tsn)
    if not self._sent_queue:
        self._t3_cancel()  # there is no outstanding data
    elif advanced:
        self._t3_restart()  # the earliest outstanding chunk was acknowledged
    self._update_advanced_peer_ack_point()
    await self._data_channel_flush()
    await self._transmit()


def _gap_blocks(self: Any, sack: Any, acked: Acked) -> bool:
    """Mark what ``sack``'s gap blocks newly acknowledge, then count a miss (§7.2.4) for each
    chunk below the highest of them (HTNA) that is still missing and was last transmitted
    before a chunk this SACK newly acknowledges. True when a chunk reached
    :data:`MISS_THRESHOLD` (a loss: fast retransmit)."""
    cumulative = sack.cumulative_tsn
    blocks = sorted(sack.gaps)  # offsets from the cumulative TSN (§3.3.4), in order as sent
    missing: list[tuple[int, Any]] = []
    highest = 0  # offset of the highest TSN newly acknowledged
    i = 0
    for schunk in self._sent_queue:
        offset = (schunk.tsn - cumulative) % sctp.SCTP_TSN_MODULO
        while i < len(blocks) and blocks[i][1] < offset:
            i += 1
        if i == len(blocks):
            break  # beyond the last block: nothing more is reported
        if blocks[i][0] <= offset:
            if not schunk._acked:
                acked.add(schunk)
                schunk._acked = True
                schunk._retransmit = False  # the peer has it: a retransmission would be wasted
                highest = offset
            self._flight_size_decrease(schunk)
        else:
            missing.append((offset, schunk))
    loss = False
    for offset, schunk in missing:
        if offset > highest:
            break
        if schunk._retransmit or schunk._abandoned or getattr(schunk, SENT_ORDER, 0) >= acked.newest:
            continue  # already marked, or no evidence yet: nothing sent after it has arrived
        schunk._misses += 1
        if schunk._misses >= MISS_THRESHOLD:
            schunk._misses = 0
            if not self._maybe_abandon(schunk):
                schunk._retransmit = True
            schunk._acked = False
            self._flight_size_decrease(schunk)
            loss = True
    return loss


def _adjust_cwnd(self: Any, advanced: bool, done_bytes: int, utilized: bool, loss: bool, cumulative: int) -> None:
    """aiortc 1.16's congestion window rules (RFC 9260 §7.2.1-§7.2.4), unchanged."""
    if self._fast_recovery_exit is None:
        if advanced and utilized:
            if self._cwnd <= self._ssthresh:  # slow start
                self._cwnd += min(done_bytes, sctp.USERDATA_MAX_LENGTH)
            else:  # congestion avoidance
                self._partial_bytes_acked += done_bytes
                if self._partial_bytes_acked >= self._cwnd:
                    self._partial_bytes_acked -= self._cwnd
                    self._cwnd += sctp.USERDATA_MAX_LENGTH
        if loss:
            self._ssthresh = max(self._cwnd // 2, 4 * sctp.USERDATA_MAX_LENGTH)
            self._cwnd = self._ssthresh
            self._partial_bytes_acked = 0
            self._fast_recovery_exit = self._sent_queue[-1].tsn
            self._fast_recovery_transmit = True
    elif uint32_gte(cumulative, self._fast_recovery_exit):
        self._fast_recovery_exit = None


def _t3_expired(self: Any) -> None:
    """aiortc 1.16's ``_t3_expired``, except that gap-acknowledged chunks are left alone
    (RFC 9260 §6.3.3 E3 and §1.3).

    Like aiortc, the RTO does not double (E2). Under a loss fault a timeout's single packet and
    its SACK are each lost one time in five, so a timeout follows another about one time in
    three, and no RTT sample comes meanwhile (C5) to bring the RTO down. With the doubling, one
    of two runs at 2000 msg/s under 20 % loss stalled for 3 s (as a chain 0.22 + 0.44 + 0.88 +
    1.76 s would) until the client's heartbeat gave the peer up; without it, three of three
    kept up."""
    state: _Recovery | None = getattr(self, _STATE, None)
    if state is None:
        _ORIGINAL["_t3_expired"](self)
        return
    self._t3_handle = None
    for chunk in self._sent_queue:
        if chunk._acked:
            continue
        if not self._maybe_abandon(chunk):
            chunk._retransmit = True
        self._flight_size_decrease(chunk)  # awaiting retransmission: not outstanding (§1.3)
    self._update_advanced_peer_ack_point()
    self._fast_recovery_exit = None
    self._partial_bytes_acked = 0
    self._ssthresh = max(self._cwnd // 2, 4 * sctp.USERDATA_MAX_LENGTH)
    self._cwnd = sctp.USERDATA_MAX_LENGTH
    task = asyncio.ensure_future(_retransmit(self))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _retransmit(self: Any) -> None:
    try:
        await self._transmit()
    except ConnectionError as exc:  # the DTLS transport closed under the association
        log.debug("sctp: retransmission after the transport closed: %s", exc)


def _update_advanced_peer_ack_point(self: Any) -> None:
    """aiortc 1.16's ``_update_advanced_peer_ack_point`` (RFC 3758 §3.5 C1-C3), except that the
    Advanced.Peer.Ack.Point also moves over chunks the peer has acknowledged by a gap block.

    RFC 3758 §3.5 C2 moves it over abandoned chunks only, so a chunk the peer already holds stops
    it: when a lost packet carried reliable and unreliable messages in turn, each unreliable one
    cost a round trip of its own (repair, SACK, FORWARD TSN, SACK, FORWARD TSN ...), and at
    1000 msg/s under 20 % loss the reliable channel fell behind by more than it could ever
    catch up. A peer that holds every TSN up to the new point but the abandoned ones reaches
    that point itself as its cumulative TSN (RFC 9260 §6.2), so the FORWARD TSN only says
    sooner what the peer will conclude; it would be wrong only for a peer that reneges on
    gap-acknowledged data (§6.2.1), which neither aiortc nor Chromium's dcSCTP does.
    Only abandoned chunks are reported per stream, as before.
    """
    if getattr(self, _STATE, None) is None:
        _ORIGINAL["_update_advanced_peer_ack_point"](self)
        return
    if uint32_gt(self._last_sacked_tsn, self._advanced_peer_ack_tsn):
        self._advanced_peer_ack_tsn = self._last_sacked_tsn
    while self._outbound_queue and self._outbound_queue[0]._abandoned:
        self._sent_queue.append(self._outbound_queue.popleft())
    # The front of the sent queue follows the peer's cumulative TSN or an abandoned chunk, so an
    # acknowledged chunk there is one the peer holds above a gap only abandoned chunks leave.
    while self._sent_queue and (self._sent_queue[0]._abandoned or self._sent_queue[0]._acked):
        chunk = self._sent_queue.popleft()
        self._advanced_peer_ack_tsn = chunk.tsn
        if chunk._abandoned and not (chunk.flags & sctp.SCTP_DATA_UNORDERED):
            self._forward_tsn_streams[chunk.stream_id] = (chunk.stream_seq, chunk.tsn)
    self._forward_tsn_streams = {
        stream_id: (stream_seq, tsn)
        for stream_id, (stream_seq, tsn) in self._forward_tsn_streams.items()
        if uint32_gt(tsn, self._last_sacked_tsn)
    }
    if uint32_gt(self._advanced_peer_ack_tsn, self._last_sacked_tsn):
        self._forward_tsn_chunk = sctp.ForwardTsnChunk()
        self._forward_tsn_chunk.cumulative_tsn = self._advanced_peer_ack_tsn
        self._forward_tsn_chunk.streams = [
            (stream_id, stream_seq) for stream_id, (stream_seq, _) in self._forward_tsn_streams.items()
        ]
