"""What a crowd does to the server: accepted connections per second, concurrent connections
and event-loop lag over time. :class:`LoadMeter` is pure (times passed in);
:func:`probe_loop_lag` is the one task that measures the lag.
"""

from __future__ import annotations

import asyncio
import math
from array import array
from collections.abc import Callable, Iterator
from typing import Any

from rtplay.protocol.load import BIN_S, bin_of

#: Bins kept per series: an hour at 100 ms. Older bins are forgotten first. Each series is one
#: array of this many doubles (288 KiB), made at start.
MAX_BINS = 36_000

#: How often the lag probe wakes: a sleep that overshoots by L means the loop was busy for L.
LAG_PROBE_S = 0.05



#: A bin with no value: below every value a series records (counts, peaks and lags are never
#: negative), so the array's own ``max`` skips empty bins.
EMPTY = -math.inf


class BinSeries:
    """One number per 100 ms bin, for the newest :data:`MAX_BINS` bins, read like a dict of
    bin -> value in time order (pure).

    The values live in one array of doubles (:data:`EMPTY`: no value in that bin), never in objects of
    their own. A dict of int bins to int or float values allocated two small objects per bin
    and kept them an hour; those allocated while a burst of connections was being served sat
    among the burst's objects in pymalloc's 1 MiB arenas, and a few such survivors per arena
    kept every arena the burst had filled (10,000 subscribers: ~100 MB that never came back).
    """

    def __init__(self, capacity: int = MAX_BINS) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._slots = array("d", [EMPTY]) * capacity
        self._first = 0
        """The first bin ever set: nothing older is walked."""
        self._newest: int | None = None
        self._count = 0

    def _oldest(self) -> int:
        assert self._newest is not None
        return max(self._first, self._newest - len(self._slots) + 1)

    def get(self, b: int, default: float) -> float:
        """The value of bin ``b``, or ``default`` when it has none (or was forgotten)."""
        if self._newest is None or not self._oldest() <= b <= self._newest:
            return default
        value = self._slots[b % len(self._slots)]
        return default if value == EMPTY else value

    def __setitem__(self, b: int, value: float) -> None:
        """Set bin ``b``; a bin newer than any before forgets the bins that fall out of the
        window (bins come in time order: one older than the window is ignored)."""
        size = len(self._slots)
        if self._newest is None:
            self._first = self._newest = b
        elif b > self._newest:
            for gone in range(max(self._newest + 1, b - size + 1), b + 1):
                self._clear(gone % size)
            self._newest = b
        elif b < self._oldest():
            return
        slot = b % size
        self._count += self._slots[slot] == EMPTY
        self._slots[slot] = value

    def _clear(self, slot: int) -> None:
        if self._slots[slot] != EMPTY:
            self._slots[slot] = EMPTY
            self._count -= 1

    def __len__(self) -> int:
        return self._count

    def items(self, since: int | None = None) -> Iterator[tuple[int, float]]:
        """``(bin, value)`` of every bin with a value, oldest first (from bin ``since`` on)."""
        if self._newest is None:
            return
        size = len(self._slots)
        first = self._oldest() if since is None else max(since, self._oldest())
        for b in range(first, self._newest + 1):
            value = self._slots[b % size]
            if value != EMPTY:
                yield b, value

    def __iter__(self) -> Iterator[int]:
        return (b for b, _ in self.items())

    def values(self) -> Iterator[float]:
        return (v for _, v in self.items())

    def peak(self, default: float) -> float:
        """The largest value kept, or ``default`` when there is none (the array's own max)."""
        return max(self._slots) if self._count else default


class LoadMeter:
    """Counts accepts, tracks the concurrent count and records loop lag, per 100 ms bin."""

    def __init__(self) -> None:
        self.concurrent = 0
        self.accepts = BinSeries()
        self.peak_concurrent = BinSeries()
        self.lag_ms = BinSeries()

    def accepted(self, now: float) -> None:
        """A connection (or held request) was accepted and is now live."""
        b = bin_of(now)
        self.accepts[b] = self.accepts.get(b, 0) + 1
        self.concurrent += 1
        self.peak_concurrent[b] = max(self.peak_concurrent.get(b, 0), self.concurrent)

    def closed(self, now: float) -> None:
        self.concurrent = max(0, self.concurrent - 1)
        b = bin_of(now)
        self.peak_concurrent[b] = max(self.peak_concurrent.get(b, 0), self.concurrent)

    def lag(self, now: float, lag_s: float) -> None:
        b = bin_of(now)
        self.lag_ms[b] = max(self.lag_ms.get(b, 0.0), lag_s * 1000)

    def series(self, since: float | None = None) -> dict[str, Any]:
        """``[[t, value], …]`` per 100 ms bin (t = bin start, monotonic s) and the peaks."""
        first = None if since is None else bin_of(since)

        def pick(data: BinSeries, scale: float = 1.0) -> list[list[float]]:
            return [[round(b * BIN_S, 1), round(v * scale, 1)] for b, v in data.items(first)]

        accepts = pick(self.accepts, 1 / BIN_S)
        return {
            "bin_s": BIN_S,
            "concurrent_now": self.concurrent,
            "peak_accepts_per_s": max((v for _, v in accepts), default=0.0),
            "peak_concurrent": int(self.peak_concurrent.peak(0)),
            "max_loop_lag_ms": round(self.lag_ms.peak(0.0), 1),
            "accepts_per_s": accepts,
            "concurrent": pick(self.peak_concurrent),
            "loop_lag_ms": pick(self.lag_ms),
        }


async def probe_loop_lag(meter: LoadMeter, clock: Callable[[], float]) -> None:
    """Measure how late the loop wakes a sleeper, forever (cancel to stop)."""
    while True:
        before = clock()
        await asyncio.sleep(LAG_PROBE_S)
        now = clock()
        meter.lag(now, max(0.0, now - before - LAG_PROBE_S))
