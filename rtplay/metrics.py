"""Per-transport accounting. Pure: no I/O, no clock of its own (``now`` is passed in).

A :class:`ChannelStats` answers what a user asks of a transport: did every message arrive
(delivered / lost / lost_to_reset), did any arrive twice or out of order, how late (latency
percentiles), how fast (arrivals per second), and how many bytes each one cost on the wire.
Memory is bounded at any run length: the histogram has a fixed number of buckets and the
sequence tracker keeps only the gaps, capped at :data:`MAX_TRACKED_GAPS`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

#: Gaps (runs of missing seqs) remembered so a late arrival can still fill them. A reliable
#: transport has none; an unreliable one at 20% loss over 10 s at 1000 msg/s has ~1600. Past
#: the cap the oldest gap is written off as lost for good, so memory stays bounded.
MAX_TRACKED_GAPS = 4096


class SeqTracker:
    """Counts unique, duplicate, out-of-order and missing seqs from a starting cursor."""

    def __init__(self, cursor: int = 0) -> None:
        self.highest = cursor
        """The highest seq seen (or the starting cursor)."""
        self.delivered = 0
        self.duplicates = 0
        self.out_of_order = 0
        self.lost_to_reset = 0
        self.written_off = 0
        """Missing seqs dropped from tracking once :data:`MAX_TRACKED_GAPS` was reached."""
        self._gap_starts: list[int] = []  # sorted, disjoint, inclusive ranges
        self._gap_ends: list[int] = []

    @property
    def missing(self) -> int:
        """Seqs below :attr:`highest` that never arrived (and were not lost to a reset)."""
        gaps = sum(e - s + 1 for s, e in zip(self._gap_starts, self._gap_ends))
        return gaps + self.written_off

    def see(self, seq: int) -> bool:
        """Record an arrival; True when it is new (not a duplicate)."""
        if seq > self.highest:
            if seq > self.highest + 1:
                self._add_gap(self.highest + 1, seq - 1)
            self.highest = seq
            self.delivered += 1
            return True
        if self._fill(seq):
            self.delivered += 1
            self.out_of_order += 1
            return True
        self.duplicates += 1
        return False

    def skip_to(self, seq: int) -> None:
        """Seqs up to ``seq`` were never sent on this channel (e.g. published while away on a
        live-only channel): they are neither delivered nor lost."""
        self.highest = max(self.highest, seq)

    def reset(self, first: int) -> int:
        """The server says seqs before ``first`` are gone: count them, return how many.

        A ``first`` at or below what we already have means the server's numbering restarted
        below our cursor (it lost its state): rewind, so the next resume asks from there."""
        if first - 1 < self.highest:
            self.highest = first - 1
            while self._gap_ends and self._gap_ends[-1] >= first:
                if self._gap_starts[-1] >= first:
                    del self._gap_starts[-1], self._gap_ends[-1]
                else:
                    self._gap_ends[-1] = first - 1
        lost = 0
        if first - 1 > self.highest:
            lost += first - 1 - self.highest
            self.highest = first - 1
        while self._gap_starts and self._gap_starts[0] < first:
            start, end = self._gap_starts[0], self._gap_ends[0]
            if end < first:
                lost += end - start + 1
                del self._gap_starts[0], self._gap_ends[0]
            else:
                lost += first - start
                self._gap_starts[0] = first
        self.lost_to_reset += lost
        return lost

    def _add_gap(self, start: int, end: int) -> None:
        self._gap_starts.append(start)
        self._gap_ends.append(end)
        if len(self._gap_starts) > MAX_TRACKED_GAPS:
            self.written_off += self._gap_ends[0] - self._gap_starts[0] + 1
            del self._gap_starts[0], self._gap_ends[0]

    def _fill(self, seq: int) -> bool:
        i = bisect.bisect_right(self._gap_starts, seq) - 1
        if i < 0 or seq > self._gap_ends[i]:
            return False
        start, end = self._gap_starts[i], self._gap_ends[i]
        if start == end:
            del self._gap_starts[i], self._gap_ends[i]
        elif seq == start:
            self._gap_starts[i] = seq + 1
        elif seq == end:
            self._gap_ends[i] = seq - 1
        else:
            self._gap_ends[i] = seq - 1
            self._gap_starts.insert(i + 1, seq + 1)
            self._gap_ends.insert(i + 1, end)
        return True


class LatencyHistogram:
    """Log-bucketed latency histogram: fixed memory, percentiles within 1 %.

    Bucket ``i`` holds values in ``[MIN * GROWTH**i, MIN * GROWTH**(i+1))`` ms. From 1 µs to
    over 1000 s that is ~2100 buckets; values outside are clamped to the ends. The exact
    maximum is kept alongside.
    """

    MIN_MS = 0.001
    GROWTH = 1.01
    BUCKETS = 2100

    def __init__(self) -> None:
        self._counts = [0] * self.BUCKETS
        self.count = 0
        self.max = 0.0
        self._log_growth = math.log(self.GROWTH)

    def add(self, ms: float) -> None:
        ms = max(ms, 0.0)  # same-host clocks: a tiny negative is rounding, not time travel
        self.count += 1
        self.max = max(self.max, ms)
        if ms <= self.MIN_MS:
            index = 0
        else:
            index = min(int(math.log(ms / self.MIN_MS) / self._log_growth), self.BUCKETS - 1)
        self._counts[index] += 1

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (0-100) in ms, or None with no samples."""
        return self.percentiles(p)[0]

    def percentiles(self, *ps: float) -> list[float | None]:
        """Several percentiles (ascending or not) in one pass over the buckets."""
        if self.count == 0:
            return [None] * len(ps)
        ranks = sorted((max(1, math.ceil(self.count * p / 100)), i) for i, p in enumerate(ps))
        out: list[float | None] = [self.max] * len(ps)
        seen, next_rank = 0, 0
        for index, n in enumerate(self._counts):
            seen += n
            while next_rank < len(ranks) and seen >= ranks[next_rank][0]:
                # Middle of the bucket (geometric), but never above the true maximum.
                value = self.MIN_MS * self.GROWTH ** (index + 0.5) if index else self.MIN_MS
                out[ranks[next_rank][1]] = min(value, self.max)
                next_rank += 1
            if next_rank == len(ranks):
                break
        return out

    def summary(self) -> dict[str, float | None]:
        p50, p95, p99 = self.percentiles(50, 95, 99)
        return {
            "p50": _round(p50),
            "p95": _round(p95),
            "p99": _round(p99),
            "max": _round(self.max if self.count else None),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


class RateMeter:
    """Arrivals per second over a sliding window, from timestamps passed in (seconds)."""

    #: At most this many timestamps are kept; beyond it the rate is computed from the newest.
    MAX_SAMPLES = 8192

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=self.MAX_SAMPLES)

    def add(self, now: float) -> None:
        self._times.append(now)

    def rate(self, now: float) -> float:
        while self._times and self._times[0] <= now - self.window_s:
            self._times.popleft()
        if len(self._times) == self.MAX_SAMPLES:
            span = now - self._times[0]
            return len(self._times) / span if span > 0 else float(len(self._times))
        return len(self._times) / self.window_s


@dataclass
class ChannelStats:
    """Accounting for one channel of one transport (most transports have one channel)."""

    tracker: SeqTracker = field(default_factory=SeqTracker)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    arrivals: RateMeter = field(default_factory=RateMeter)
    wire_bytes: int = 0
    last_latency_ms: float | None = None
    _window_max_ms: float | None = None

    def on_message(self, seq: int, sent_ms: float, received_ms: float, now: float) -> bool:
        """Record one envelope; True when it was new. ``now`` is the monotonic clock (s)."""
        new = self.tracker.see(seq)
        if new:
            latency = received_ms - sent_ms
            self.latency.add(latency)
            self.last_latency_ms = max(latency, 0.0)
            if self._window_max_ms is None or self.last_latency_ms > self._window_max_ms:
                self._window_max_ms = self.last_latency_ms
            self.arrivals.add(now)
        return new

    def take_window_max_ms(self) -> float | None:
        """The worst latency since the previous call (None if nothing new arrived): one
        consumer (a chart) samples it per period, so replay and delay spikes show."""
        worst, self._window_max_ms = self._window_max_ms, None
        return worst

    def add_wire_bytes(self, n: int) -> None:
        self.wire_bytes += n

    def lost(self, published: int) -> int:
        """Messages published while subscribed that never arrived (nor were reset away)."""
        return self.tracker.missing + max(0, published - self.tracker.highest)

    def report(self, published: int) -> dict[str, object]:
        t = self.tracker
        return {
            "delivered": t.delivered,
            "lost": self.lost(published),
            "lost_to_reset": t.lost_to_reset,
            "duplicates": t.duplicates,
            "out_of_order": t.out_of_order,
            "latency_ms": self.latency.summary(),
            "wire_bytes_per_msg": round(self.wire_bytes / t.delivered, 1) if t.delivered else None,
        }


class ConnectionStats:
    """Connects, reconnects and downtime of one client, from monotonic times passed in."""

    def __init__(self) -> None:
        self.connects = 0
        self.reconnects = 0
        self._down_since: float | None = None
        self._downtime = 0.0
        self.connected = False

    def on_connected(self, now: float) -> None:
        if self.connected:
            return
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
        if self._down_since is not None:
            self._downtime += now - self._down_since
            self._down_since = None
        self.connected = True

    def on_disconnected(self, now: float) -> None:
        """The connection is gone (or an attempt failed) — downtime runs until the next connect."""
        if self._down_since is None:
            self._down_since = now
        self.connected = False

    def downtime(self, now: float) -> float:
        running = now - self._down_since if self._down_since is not None else 0.0
        return self._downtime + running
