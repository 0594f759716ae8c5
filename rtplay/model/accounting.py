"""The one accounting model: what was delivered, pending, lost, reset, duplicated. Pure.

Every figure a pane, the comparison view, the JSON report or a per-fault record shows comes
from here, with these definitions (the README and ``rtplay run``'s legend say the same):

Reliable channels (everything but wt/datagram and rtc/unreliable)
  ``delivered``      unique seqs received.
  ``pending``        published while subscribed, not delivered yet, still recoverable: the
                     client is connected, or retrying with a cursor the server can still serve.
  ``lost``           can never arrive: a hole the client moved past, or the tail of a client
                     that failed for good, or of one whose cursor the server can no longer serve.
  ``lost_to_reset``  the server said it can no longer replay them.
  ``duplicates``     a seq delivered again; ``out_of_order`` a seq below the highest one that
                     filled a hole (a late fill is never a duplicate).

Unreliable channels (wt/datagram, rtc/unreliable)
  ``lost``           every seq published from the channel's first arrival to the end that
                     never arrived, up or down, split ``lost_while_connected`` (published
                     while the client held a session, stalled or not) and ``lost_while_down``
                     (published after its session ended, up to the next session's first
                     seq); ``loss_rate`` = lost / seqs in that span. The tail
                     after the last arrival counts only once the channel is down or publishing
                     has stopped for :data:`UNRELIABLE_GRACE_S` (the stated grace), so a
                     datagram still in flight is never called lost.

:class:`SeqTracker` remembers which seqs are missing; :class:`LiveChannel` remembers when an
unreliable channel was down; :func:`reliable_figures` and :func:`unreliable_figures` turn them
into the figures above.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

#: Gaps (runs of missing seqs) held where a late arrival can fill them. A reliable transport
#: has none; an unreliable one at 20% loss over 10 s at 1000 msg/s has ~1600. Past the cap
#: the oldest gap is written off (counted lost) into :data:`MAX_WRITTEN_OFF_GAPS`.
MAX_TRACKED_GAPS = 4096

#: Written-off gaps still remembered, so a very late arrival into one is a late fill (not a
#: duplicate) and stops being counted lost. Older ones are forgotten: an arrival into them is
#: counted ``too_late`` (neither delivered again nor a duplicate), keeping memory bounded.
MAX_WRITTEN_OFF_GAPS = 16384

#: Down ranges of an unreliable channel kept for per-range questions (one per reconnect);
#: older ones only add to a running total.
MAX_DOWN_RANGES = 4096

#: An unreliable channel's tail (seqs after its last arrival) counts as lost only once
#: publishing has stopped this long: a loopback datagram arrives within milliseconds, and
#: half a second also covers a delay fault's held datagrams of up to ~400 ms.
UNRELIABLE_GRACE_S = 0.5


def _overlap(lo: int, hi: int, start: int, end: int) -> int:
    return max(0, min(hi, end) - max(lo, start) + 1)


class _Ranges:
    """Sorted, disjoint, inclusive ranges with point removal (the tracker's holes)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __len__(self) -> int:
        return len(self.starts)

    def total(self) -> int:
        return sum(e - s + 1 for s, e in zip(self.starts, self.ends, strict=False))

    def append(self, start: int, end: int) -> None:
        self.starts.append(start)
        self.ends.append(end)

    def pop_first(self) -> tuple[int, int]:
        start, end = self.starts.pop(0), self.ends.pop(0)
        return start, end

    def remove(self, seq: int) -> bool:
        """Take ``seq`` out of its range; False when no range holds it."""
        i = bisect.bisect_right(self.starts, seq) - 1
        if i < 0 or seq > self.ends[i]:
            return False
        start, end = self.starts[i], self.ends[i]
        if start == end:
            del self.starts[i], self.ends[i]
        elif seq == start:
            self.starts[i] = seq + 1
        elif seq == end:
            self.ends[i] = seq - 1
        else:
            self.ends[i] = seq - 1
            self.starts.insert(i + 1, seq + 1)
            self.ends.insert(i + 1, end)
        return True

    def count_in(self, lo: int, hi: int) -> int:
        """How many seqs of the ranges lie in ``[lo, hi]``."""
        if hi < lo or not self.starts:
            return 0
        i = max(0, bisect.bisect_right(self.starts, lo) - 1)
        n = 0
        while i < len(self.starts) and self.starts[i] <= hi:
            n += _overlap(lo, hi, self.starts[i], self.ends[i])
            i += 1
        return n

    def cut_from(self, first: int) -> None:
        """Drop every seq at or above ``first``."""
        while self.ends and self.ends[-1] >= first:
            if self.starts[-1] >= first:
                del self.starts[-1], self.ends[-1]
            else:
                self.ends[-1] = first - 1

    def cut_below(self, first: int) -> int:
        """Drop every seq below ``first``; return how many were dropped."""
        n = 0
        while self.starts and self.starts[0] < first:
            start, end = self.starts[0], self.ends[0]
            if end < first:
                n += end - start + 1
                del self.starts[0], self.ends[0]
            else:
                n += first - start
                self.starts[0] = first
        return n


class SeqTracker:
    """Counts unique, duplicate, out-of-order and missing seqs from a starting cursor."""

    def __init__(self, cursor: int = 0) -> None:
        self.highest = cursor
        """The highest seq seen, skipped to, or reset past (or the starting cursor)."""
        self.first_seen: int | None = None
        """The first seq that arrived (where an unreliable channel's loss count starts)."""
        self.delivered = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.lost_to_reset = 0
        self.too_late = 0
        """Arrivals below every remembered hole: too old to tell a late fill from a copy."""
        self._gaps = _Ranges()
        self._written_off = _Ranges()
        self._forgotten = 0
        """Written-off seqs no longer remembered one by one (still missing)."""
        self._forgotten_below = cursor
        """Every forgotten written-off seq is at or below this one."""

    @property
    def missing(self) -> int:
        """Seqs below :attr:`highest` that never arrived (and were not skipped or reset away)."""
        return self._gaps.total() + self._written_off.total() + self._forgotten

    @property
    def written_off(self) -> int:
        """Missing seqs no longer held where a late arrival fills them cheaply."""
        return self._written_off.total() + self._forgotten

    def missing_in(self, lo: int, hi: int) -> int:
        """Missing seqs in ``[lo, hi]`` (only up to :attr:`highest`; forgotten ones excluded)."""
        hi = min(hi, self.highest)
        return self._gaps.count_in(lo, hi) + self._written_off.count_in(lo, hi)

    def see(self, seq: int) -> bool:
        """Record an arrival; True when it is new (not a duplicate)."""
        if self.first_seen is None:
            self.first_seen = seq
        if seq > self.highest:
            if seq > self.highest + 1:
                self._add_gap(self.highest + 1, seq - 1)
            self.highest = seq
            self.delivered += 1
            return True
        if self._gaps.remove(seq) or self._written_off.remove(seq):
            self.delivered += 1
            self.out_of_order += 1
            return True
        if self._forgotten and seq <= self._forgotten_below:
            self.too_late += 1
            return False
        self.duplicates += 1
        return False

    def see_run(self, lo: int, hi: int) -> None:
        """Record arrivals ``lo..hi`` in that order (as :meth:`see` one by one); a run past
        everything seen costs one step, however long (a replayed backlog of 10,000)."""
        if lo > self.highest:
            if self.first_seen is None:
                self.first_seen = lo
            if lo > self.highest + 1:
                self._add_gap(self.highest + 1, lo - 1)
            self.delivered += hi - lo + 1
            self.highest = max(self.highest, hi)
            return
        for seq in range(lo, hi + 1):
            self.see(seq)

    def miss_through(self, seq: int) -> None:
        """Seqs up to ``seq`` were sent but never arrived (an unreliable channel's silent end)."""
        if seq > self.highest:
            self._add_gap(self.highest + 1, seq)
            self.highest = seq

    def skip_to(self, seq: int) -> None:
        """Seqs up to ``seq`` were never sent on this channel (e.g. published while away on a
        live-only channel): they are neither delivered nor lost."""
        self.highest = max(self.highest, seq)

    def rewind(self, first: int) -> None:
        """The server's numbering is behind our cursor (it lost its state, e.g. restarted):
        forget what we expected at or above ``first`` so the next resume asks from there.
        What was delivered stays delivered."""
        if first - 1 < self.highest:
            self.highest = first - 1
            self._gaps.cut_from(first)
            self._written_off.cut_from(first)

    def reset(self, first: int) -> int:
        """The server says seqs before ``first`` are gone: count them, return how many."""
        lost = 0
        if first - 1 > self.highest:
            lost += first - 1 - self.highest
            self.highest = first - 1
        lost += self._gaps.cut_below(first) + self._written_off.cut_below(first)
        if self._forgotten:  # every forgotten seq lies below the remembered ones
            lost += self._forgotten
            self._forgotten = 0
        self.lost_to_reset += lost
        return lost

    def _add_gap(self, start: int, end: int) -> None:
        self._gaps.append(start, end)
        if len(self._gaps) > MAX_TRACKED_GAPS:
            self._written_off.append(*self._gaps.pop_first())
            if len(self._written_off) > MAX_WRITTEN_OFF_GAPS:
                s, e = self._written_off.pop_first()
                self._forgotten += e - s + 1
                self._forgotten_below = e


class LiveChannel:
    """When an unreliable channel was down, by seq: what it could not have received.

    The client says when a session ends (:meth:`went_down`, with the hub's last seq at that
    moment) and where the next session's channel starts (:meth:`live_from`, the server's
    ``{"live": L}``). Seqs published while the session still stood but that never arrived
    (a stall, a silent network) were lost while connected; those published after it ended,
    up to ``L - 1``, were never sent on the channel: ``lost_while_down``, not tracker holes.
    """

    def __init__(self, tracker: SeqTracker) -> None:
        self.tracker = tracker
        self.down = False
        """True from the end of a session until the next one's ``live`` line."""
        self.down_after = 0
        """The last seq published before the session ended (or its last arrival, if unknown)."""
        self._ranges: deque[tuple[int, int]] = deque()
        self._dropped = 0
        """Seqs of down ranges dropped from :attr:`_ranges` (all below the kept ones)."""
        self._dropped_below = 0

    def went_down(self, published: int | None = None) -> None:
        """The session carrying the channel ended (or an attempt failed); ``published`` is the
        hub's last seq at that moment, when known."""
        if not self.down:
            self.down = True
            self.down_after = max(self.tracker.highest, published or 0)

    def live_from(self, first: int) -> None:
        """A new session sends the channel's seqs from ``first`` on."""
        if self.down:  # what the old session should have carried is lost while connected
            self.tracker.miss_through(min(self.down_after, first - 1))
        start = self.tracker.highest + 1
        if self.down and first > start:
            self._ranges.append((start, first - 1))
            if len(self._ranges) > MAX_DOWN_RANGES:
                s, e = self._ranges.popleft()
                self._dropped += e - s + 1
                self._dropped_below = e
        self.down = False
        self.tracker.skip_to(first - 1)

    def down_in(self, lo: int, hi: int) -> int:
        """Seqs in ``[lo, hi]`` published while the channel was down (an open range runs to ``hi``)."""
        n = sum(_overlap(lo, hi, s, e) for s, e in self._ranges)
        if self._dropped and lo <= 1 and hi >= self._dropped_below:
            n += self._dropped
        if self.down:
            n += _overlap(lo, hi, max(self.tracker.highest, self.down_after) + 1, hi)
        return n


@dataclass(frozen=True, slots=True)
class View:
    """The context a figure is taken in (all from the session, none from a clock here)."""

    published: int
    """The hub's last seq (for a client that failed for good: the last seq when it failed)."""
    recoverable: bool = True
    """The reliable tail can still arrive (connected, or retrying with a servable cursor)."""
    final: bool = False
    """Publishing stopped at least :data:`UNRELIABLE_GRACE_S` ago: every tail is settled."""


def is_recoverable(failed: bool, connected: bool, cursor: int, replay_from: int) -> bool:
    """Can a reliable channel at ``cursor`` still get what follows it?

    ``replay_from`` is the oldest seq the server can still replay.
    """
    return not failed and (connected or cursor + 1 >= replay_from)


def reliable_lost_in(tracker: SeqTracker, view: View, lo: int, hi: int) -> int:
    """Lost seqs of a reliable channel in ``[lo, hi]``."""
    hi = min(hi, view.published)
    tail = 0 if view.recoverable else _overlap(lo, hi, tracker.highest + 1, view.published)
    return tracker.missing_in(lo, hi) + tail


def reliable_figures(tracker: SeqTracker, view: View) -> dict[str, int]:
    """A reliable channel's counts (see the module docstring)."""
    tail = max(0, view.published - tracker.highest)
    return {
        "delivered": tracker.delivered,
        "pending": tail if view.recoverable else 0,
        "lost": tracker.missing + (0 if view.recoverable else tail),
        "lost_to_reset": tracker.lost_to_reset,
        "duplicates": tracker.duplicates,
        "out_of_order": tracker.out_of_order,
    }


def _unreliable_end(live: LiveChannel, view: View) -> int:
    tracker = live.tracker
    if view.final or live.down:
        return view.published
    return min(tracker.highest, view.published)


def unreliable_lost_in(live: LiveChannel, view: View, lo: int, hi: int) -> tuple[int, int]:
    """(lost while connected, lost while down) in ``[lo, hi]`` of an unreliable channel."""
    tracker = live.tracker
    if tracker.first_seen is None:
        return 0, 0
    lo = max(lo, tracker.first_seen)
    hi = min(hi, _unreliable_end(live, view))
    if hi < lo:
        return 0, 0
    down = live.down_in(lo, hi)
    connected = tracker.missing_in(lo, hi)
    if not live.down:  # a settled tail after the last arrival: lost while connected
        connected += _overlap(lo, hi, tracker.highest + 1, hi)
    else:  # sent (or due) before the session ended, never arrived
        connected += _overlap(lo, hi, tracker.highest + 1, min(hi, live.down_after))
    return connected, down


def unreliable_figures(live: LiveChannel, view: View) -> dict[str, object]:
    """An unreliable channel's counts (see the module docstring)."""
    tracker = live.tracker
    connected, down = unreliable_lost_in(live, view, 1, view.published)
    span = 0
    if tracker.first_seen is not None:
        span = max(0, _unreliable_end(live, view) - tracker.first_seen + 1)
    lost = connected + down
    return {
        "delivered": tracker.delivered,
        "pending": 0,
        "lost": lost,
        "lost_while_connected": connected,
        "lost_while_down": down,
        "loss_rate": round(lost / span, 4) if span else None,
        "lost_to_reset": 0,
        "duplicates": tracker.duplicates,
        "out_of_order": tracker.out_of_order,
    }
