"""Delayed SACKs for aiortc (RFC 9260 §6.2), opted into per association.

aiortc acknowledges every SCTP packet that carries DATA with a SACK of its own, at once. At
1000 msg/s that is a DTLS record and a UDP datagram per message on the receiving side, and a
datagram to decrypt, parse and run through ``_receive_sack_chunk`` (and a flush) on the
sending side. RFC 9260 §6.2 lets a receiver acknowledge every second packet, or within
200 ms of an unacknowledged one, and asks for an immediate SACK when DATA arrives out of
order or duplicated, which is what keeps fast retransmit working (§6.7).

:class:`DelayedAck` is that rule as pure logic (``now`` is passed in). :func:`enable` wraps
``RTCSctpTransport._send_sack`` process-wide, behaving exactly as aiortc's own unless the
association was passed to it: aiortc calls ``_send_sack`` once for every received packet
that needs acknowledging, so the wrapper is the one place where the decision is made. A SACK
is always built when it is sent, from the association's state at that moment. The same
associations take a shortcut through ``_mark_received`` for a TSN that arrives in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiortc
from aiortc import rtcsctptransport as sctp

from rtplay.compat import replace_methods, require, require_line

log = logging.getLogger(__name__)

#: The aiortc versions whose ``_send_sack`` / ``_handle_data`` contract this module relies on.
TESTED = "1.16"

#: Packets acknowledged by one SACK: RFC 9260 §6.2's "at least every second packet".
ACK_EVERY_PACKETS = 2

#: Longest an acknowledgement waits. RFC 9260 §6.2 allows up to 200 ms (Linux's and usrsctp's
#: default), but a sender that has filled its congestion window sends nothing more until the
#: SACK comes, so a lone unacknowledged packet held the reliable channel's tail: with all six
#: transports at 1000 msg/s, rtc reliable p99 was 28-99 ms headless and ~200 ms with the
#: playground live at 200 ms, 12 ms at 20 ms (``rtplay run --rate 1000 --duration 8``).
#: The SACK count is the same either way: a busy channel is acknowledged every second packet
#: long before the timer, and a quiet one gets one SACK per packet with either delay.
ACK_DELAY_S = 0.02

_STATE = "_rtplay_ack"


class DelayedAck:
    """When a data receiver sends its SACK (RFC 9260 §6.2, §6.7): pure, ``now`` passed in."""

    def __init__(self, every: int = ACK_EVERY_PACKETS, delay_s: float = ACK_DELAY_S) -> None:
        self.every = every
        self.delay_s = delay_s
        self.owed = 0
        """Packets received and not yet acknowledged."""
        self.deadline: float | None = None
        """When the owed acknowledgement must go out at the latest (None: nothing owed)."""
        self._gap = False

    def on_packet(self, now: float, *, gap: bool, duplicate: bool) -> bool:
        """Account one received packet that needs a SACK; True when it must be sent now.

        ``gap``: DATA is missing below the highest TSN received; ``duplicate``: a TSN arrived
        again. Both, and the packet that closes a gap, are acknowledged at once so that the
        sender learns of a loss (or its repair) without delay.
        """
        self.owed += 1
        urgent = gap or duplicate or self._gap
        self._gap = gap
        if urgent or self.owed >= self.every:
            return True
        if self.deadline is None:
            self.deadline = now + self.delay_s
        return False

    def sent(self) -> None:
        """A SACK went out: it acknowledges everything owed."""
        self.owed = 0
        self.deadline = None


class _Association:
    """One association's delayed-ack state and its timer (held on the transport)."""

    def __init__(self) -> None:
        self.ack = DelayedAck()
        self.timer: asyncio.TimerHandle | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def check() -> None:
    """Fail with a clear message if aiortc's SACK path is not the one this module wraps."""
    cls = sctp.RTCSctpTransport
    has = (
        hasattr(cls, "_send_sack")
        and hasattr(cls, "_mark_received")
        and hasattr(sctp, "tsn_plus_one")
        and "_send_sack" in cls._handle_data.__code__.co_names
        and "_sack_needed" in cls._handle_data.__code__.co_names
        and {"_sack_misordered", "_sack_duplicates", "_sack_needed", "_association_state", "_last_received_tsn"}
        <= set(cls.__init__.__code__.co_names)
    )
    require_line("aiortc", aiortc.__version__, TESTED, "rtplay's fork of aiortc's SACK path")
    require("aiortc", aiortc.__version__, TESTED, has, "RTCSctpTransport's SACK internals")


_ORIGINAL: dict[str, Any] = {}


def enable(transport: Any) -> None:
    """Delay this association's SACKs as RFC 9260 §6.2 allows (an ``RTCSctpTransport``)."""
    if not _ORIGINAL:
        check()
        replace_methods(sctp.RTCSctpTransport, _ORIGINAL, {"_send_sack": _send_sack, "_mark_received": _mark_received})
    if getattr(transport, _STATE, None) is None:
        setattr(transport, _STATE, _Association())


def _mark_received(self: Any, tsn: int) -> bool:
    """aiortc's ``_mark_received`` (True: a duplicate), with a shortcut for the common case,
    the next TSN in order with nothing missing: aiortc sorts and filters its sets for each."""
    if (
        getattr(self, _STATE, None) is not None
        and not self._sack_misordered
        and not self._sack_duplicates
        and tsn == sctp.tsn_plus_one(self._last_received_tsn)
    ):
        self._last_received_tsn = tsn
        return False
    return bool(_ORIGINAL["_mark_received"](self, tsn))


async def _send_sack(self: Any) -> None:
    state: _Association | None = getattr(self, _STATE, None)
    if state is None:
        await _ORIGINAL["_send_sack"](self)
        return
    loop = asyncio.get_running_loop()
    now = loop.time()
    if state.ack.on_packet(now, gap=bool(self._sack_misordered), duplicate=bool(self._sack_duplicates)):
        return await _acknowledge(self, state)
    # Owed, not sent: clear aiortc's flag so that only a packet that needs a SACK of its own
    # (not, say, one carrying a SACK for our pings) comes back here.
    self._sack_needed = False
    if state.timer is None and state.ack.deadline is not None:
        state.timer = loop.call_at(state.ack.deadline, _on_timer, self, state)
    return None


async def _acknowledge(self: Any, state: _Association) -> None:
    state.cancel()
    state.ack.sent()
    await _ORIGINAL["_send_sack"](self)


def _on_timer(self: Any, state: _Association) -> None:
    state.timer = None
    # Cancelled whenever a SACK goes out, so a firing timer is the owed SACK's: send it even if
    # the loop's clock says a hair early (uvloop rounds timers to its 1 ms clock), never skip it.
    if not state.ack.owed:
        return
    if self._association_state != sctp.RTCSctpTransport.State.ESTABLISHED:
        state.ack.sent()  # closing or closed: nothing to acknowledge any more
        return
    task = asyncio.ensure_future(_acknowledge_quietly(self, state))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _acknowledge_quietly(self: Any, state: _Association) -> None:
    try:
        await _acknowledge(self, state)
    except ConnectionError:  # DTLS closed while the SACK waited: there is no one to tell
        log.debug("sctp: delayed SACK dropped, the transport closed")
