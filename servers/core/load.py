"""What a crowd does to the server: accepted connections per second, concurrent connections
and event-loop lag over time. :class:`LoadMeter` is pure (times passed in);
:func:`probe_loop_lag` is the one task that measures the lag.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

from rtplay.protocol.load import BIN_S, bin_of

#: Bins kept per series: an hour at 100 ms. Older bins are forgotten first.
MAX_BINS = 36_000

#: How often the lag probe wakes: a sleep that overshoots by L means the loop was busy for L.
LAG_PROBE_S = 0.05



class LoadMeter:
    """Counts accepts, tracks the concurrent count and records loop lag, per 100 ms bin."""

    def __init__(self) -> None:
        self.concurrent = 0
        self.accepts: Counter[int] = Counter()
        self.peak_concurrent: dict[int, int] = {}
        self.lag_ms: dict[int, float] = {}

    def _trim(self, series: dict[int, Any]) -> None:
        """Forget the oldest bins past :data:`MAX_BINS`. A dict keeps its keys in the order they
        came, and bins come in time order (``now`` never goes back), so the oldest is the first:
        O(1), where sorting the keys (36,000 after an hour up) took milliseconds, at every new
        bin of every series."""
        while len(series) > MAX_BINS:
            del series[next(iter(series))]

    def accepted(self, now: float) -> None:
        """A connection (or held request) was accepted and is now live."""
        b = bin_of(now)
        self.accepts[b] += 1
        self.concurrent += 1
        self.peak_concurrent[b] = max(self.peak_concurrent.get(b, 0), self.concurrent)
        self._trim(self.accepts)
        self._trim(self.peak_concurrent)

    def closed(self, now: float) -> None:
        self.concurrent = max(0, self.concurrent - 1)
        b = bin_of(now)
        self.peak_concurrent[b] = max(self.peak_concurrent.get(b, 0), self.concurrent)

    def lag(self, now: float, lag_s: float) -> None:
        b = bin_of(now)
        self.lag_ms[b] = max(self.lag_ms.get(b, 0.0), lag_s * 1000)
        self._trim(self.lag_ms)

    def series(self, since: float | None = None) -> dict[str, Any]:
        """``[[t, value], …]`` per 100 ms bin (t = bin start, monotonic s) and the peaks."""
        first = None if since is None else bin_of(since)

        def pick(data: dict[int, Any], scale: float = 1.0) -> list[list[float]]:
            return [[round(b * BIN_S, 1), round(v * scale, 1)] for b, v in sorted(data.items()) if first is None or b >= first]

        accepts = pick(self.accepts, 1 / BIN_S)
        return {
            "bin_s": BIN_S,
            "concurrent_now": self.concurrent,
            "peak_accepts_per_s": max((v for _, v in accepts), default=0.0),
            "peak_concurrent": max(self.peak_concurrent.values(), default=0),
            "max_loop_lag_ms": round(max(self.lag_ms.values(), default=0.0), 1),
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
