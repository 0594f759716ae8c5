"""Per-transport accounting. Pure: no I/O, no clock of its own (``now`` is passed in).

A :class:`ChannelStats` answers what a user asks of a transport: did every message arrive
(delivered / lost / lost_to_reset), did any arrive twice or out of order, how late (latency
percentiles), how fast (arrivals per second), and how many bytes each one cost on the wire.
Memory is bounded at any run length: the histograms have at most a fixed number of buckets and the
sequence tracker keeps only the gaps. What counts as delivered, pending or lost is defined
once, in :mod:`rtplay.model.accounting`.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import accumulate

from rtplay.model.accounting import (
    MAX_TRACKED_GAPS,
    LiveChannel,
    SeqTracker,
    View,
    reliable_figures,
    reliable_lost_in,
    unreliable_figures,
    unreliable_lost_in,
)

__all__ = [
    "MAX_TRACKED_GAPS",
    "ChannelStats",
    "ConnectionStats",
    "LatencyHistogram",
    "RateMeter",
    "RecentLatency",
    "SeqTracker",
    "View",
]

class LatencyHistogram:
    """Log-bucketed latency histogram: bounded memory, percentiles within 1 %.

    Bucket ``i`` holds values in ``[MIN * GROWTH**i, MIN * GROWTH**(i+1))`` ms. From 1 µs to
    over 1000 s that is ~2100 buckets; values outside are clamped to the ends. The exact
    maximum is kept alongside. Only the buckets in use are kept: a client keeps one histogram
    per second of its last ten (:class:`RecentLatency`), and a table of every bucket made those
    eleven 185 KB a client (a crowd worker's 5,000 clients: 900 MB), for a few dozen counts.
    """

    MIN_MS = 0.001
    GROWTH = 1.01
    BUCKETS = 2100

    def __init__(self) -> None:
        self._counts: dict[int, int] = {}
        """Samples per bucket, buckets with none left out."""
        self.count = 0
        self.max = 0.0
        self._log_growth = math.log(self.GROWTH)

    def add(self, ms: float, index: int | None = None) -> int:
        """Count ``ms``; returns its bucket, which another histogram may be given as ``index``
        (the logarithm is the costly part, and every arrival goes into two histograms)."""
        ms = max(ms, 0.0)  # same-host clocks: a tiny negative is rounding, not time travel
        self.count += 1
        if ms > self.max:
            self.max = ms
        if index is None:
            index = 0 if ms <= self.MIN_MS else min(int(math.log(ms / self.MIN_MS) / self._log_growth), self.BUCKETS - 1)
        counts = self._counts
        counts[index] = counts.get(index, 0) + 1
        return index

    def percentile(self, p: float) -> float | None:
        """The ``p``-th percentile (0-100) in ms, or None with no samples."""
        return self.percentiles(p)[0]

    def percentiles(self, *ps: float) -> list[float | None]:
        """Several percentiles (ascending or not) in one pass over the buckets."""
        if self.count == 0:
            return [None] * len(ps)
        buckets = sorted(self._counts)
        cumulative = list(accumulate(self._counts[b] for b in buckets))  # then a binary search per percentile
        out: list[float | None] = []
        for p in ps:
            index = buckets[bisect_left(cumulative, max(1, math.ceil(self.count * p / 100)))]
            # Middle of the bucket (geometric), but never above the true maximum.
            value = self.MIN_MS * self.GROWTH ** (index + 0.5) if index else self.MIN_MS
            out.append(min(value, self.max))
        return out

    @classmethod
    def merged(cls, parts: Iterable[LatencyHistogram]) -> LatencyHistogram:
        """One histogram holding every sample of ``parts``."""
        out = cls()
        counts = out._counts
        for part in parts:
            for bucket, n in part._counts.items():
                counts[bucket] = counts.get(bucket, 0) + n
            out.count += part.count
            out.max = max(out.max, part.max)
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


class RecentLatency:
    """Latency percentiles of the last :attr:`WINDOW_S` seconds, so one outage does not pin
    p99 for the rest of a session: one histogram per second, the last ten merged on demand."""

    WINDOW_S = 10
    """Seconds in the window (whole one-second slots: the window is 9-10 s long)."""

    def __init__(self) -> None:
        self._slots: deque[tuple[int, LatencyHistogram]] = deque()

    def add(self, ms: float, now: float, index: int | None = None) -> None:
        """Count ``ms`` at ``now`` (``index``: its bucket, when known: see LatencyHistogram.add)."""
        slot = int(now)
        if not self._slots or self._slots[-1][0] != slot:
            self._slots.append((slot, LatencyHistogram()))
            self._expire(now)
        self._slots[-1][1].add(ms, index)

    def _expire(self, now: float) -> None:
        while self._slots and self._slots[0][0] <= int(now) - self.WINDOW_S:
            self._slots.popleft()

    def histogram(self, now: float) -> LatencyHistogram:
        """The merged histogram of the window ending at ``now``."""
        self._expire(now)
        return LatencyHistogram.merged(h for _, h in self._slots)

    def summary(self, now: float) -> dict[str, float | None]:
        p50, p99 = self.histogram(now).percentiles(50, 99)
        return {"p50": _round(p50), "p99": _round(p99), "window_s": self.WINDOW_S}


@dataclass
class ChannelStats:
    """Accounting for one channel of one transport (most transports have one channel).

    ``live`` is set on unreliable channels (wt datagram, rtc unreliable): their losses are
    counted from the first arrival on, whether the channel was up or down.
    """

    tracker: SeqTracker = field(default_factory=SeqTracker)
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    recent: RecentLatency = field(default_factory=RecentLatency)
    arrivals: RateMeter = field(default_factory=RateMeter)
    wire_bytes: int = 0
    last_latency_ms: float | None = None
    live: LiveChannel | None = None
    _window_max_ms: float | None = None

    @classmethod
    def unreliable(cls) -> ChannelStats:
        """Stats of a best-effort channel, with its down times tracked."""
        stats = cls()
        stats.live = LiveChannel(stats.tracker)
        return stats

    def on_message(self, seq: int, sent_ms: float, received_ms: float, now: float) -> bool:
        """Record one envelope; True when it was new. ``now`` is the monotonic clock (s)."""
        new = self.tracker.see(seq)
        if new:
            latency = max(received_ms - sent_ms, 0.0)
            self.recent.add(latency, now, self.latency.add(latency))
            self.last_latency_ms = latency
            if self._window_max_ms is None or latency > self._window_max_ms:
                self._window_max_ms = latency
            self.arrivals.add(now)
        return new

    def take_window_max_ms(self) -> float | None:
        """The worst latency since the previous call (None if nothing new arrived): one
        consumer (a chart) samples it per period, so replay and delay spikes show."""
        worst, self._window_max_ms = self._window_max_ms, None
        return worst

    def add_wire_bytes(self, n: int) -> None:
        self.wire_bytes += n

    def start_from(self, cursor: int) -> None:
        """Count from ``cursor`` on: the seqs up to it were published before this channel's
        client existed (a session attaching to a running server), so they are none of its
        figures and its first request resumes after them."""
        self.tracker = SeqTracker(cursor)
        if self.live is not None:
            self.live = LiveChannel(self.tracker)

    def restart_counting(self) -> None:
        """Zero every counter; the cursor carries on (so resuming and loss stay exact)."""
        self.tracker = SeqTracker(self.tracker.highest)
        self.latency, self.recent, self.arrivals = LatencyHistogram(), RecentLatency(), RateMeter()
        self.wire_bytes, self.last_latency_ms, self._window_max_ms = 0, None, None
        if self.live is not None:
            down = self.live.down
            self.live = LiveChannel(self.tracker)
            self.live.down = down

    def lost(self, published: int) -> int:
        """Seqs up to ``published`` that never arrived (nor were reset or skipped away)."""
        return self.tracker.missing + max(0, published - self.tracker.highest)

    def figures(self, view: View) -> dict[str, object]:
        """delivered / pending / lost / … by the one definition (:mod:`rtplay.model.accounting`)."""
        if self.live is not None:
            return unreliable_figures(self.live, view)
        return dict(reliable_figures(self.tracker, view))

    def lost_in(self, view: View, lo: int, hi: int) -> int:
        """Lost seqs in ``[lo, hi]`` (a per-fault record's share)."""
        if self.live is not None:
            return sum(unreliable_lost_in(self.live, view, lo, hi))
        return reliable_lost_in(self.tracker, view, lo, hi)

    def report(self, view: View, now: float) -> dict[str, object]:
        delivered = self.tracker.delivered
        return self.figures(view) | {
            "latency_ms": self.latency.summary(),
            "recent_latency_ms": self.recent.summary(now),
            "wire_bytes_per_msg": round(self.wire_bytes / delivered, 1) if delivered else None,
        }


class ConnectionStats:
    """Connects, reconnects and downtime of one client, from monotonic times passed in.

    Downtime counts only up to :attr:`cutoff` once it is set (the moment publishing stopped),
    so it never exceeds the run's duration.
    """

    def __init__(self) -> None:
        self.connects = 0
        self.reconnects = 0
        self._down_since: float | None = None
        self._downtime = 0.0
        self.connected = False
        self.cutoff: float | None = None

    def _clip(self, now: float) -> float:
        return now if self.cutoff is None else min(now, self.cutoff)

    def on_connected(self, now: float) -> None:
        if self.connected:
            return
        self.connects += 1
        if self.connects > 1:
            self.reconnects += 1
        if self._down_since is not None:
            self._downtime += max(0.0, self._clip(now) - self._down_since)
            self._down_since = None
        self.connected = True

    def on_disconnected(self, now: float) -> None:
        """The connection is gone (or an attempt failed) — downtime runs until the next connect."""
        if self._down_since is None:
            self._down_since = now
        self.connected = False

    def downtime(self, now: float) -> float:
        running = max(0.0, self._clip(now) - self._down_since) if self._down_since is not None else 0.0
        return self._downtime + running

    def restart_counting(self, now: float) -> None:
        """Zero the counters; a client that is down now starts a fresh down period."""
        self.connects = self.reconnects = 0
        self._downtime = 0.0
        if self._down_since is not None:
            self._down_since = now
        elif self.connected:
            self.connects = 1
