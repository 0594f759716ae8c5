"""Is the tool itself keeping up? Event-loop lag and publisher slip meters. Pure: time is passed in.

A latency figure includes every millisecond the receiving event loop was busy elsewhere, and
a rate figure every millisecond the publisher woke late. So each process measures its own
loop (:class:`DelayMeter` fed by :class:`LoopMonitor`), the publisher measures how far behind
its schedule it publishes, and past :data:`OVERLOAD_MS` the figures are flagged unreliable.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

#: Loop lag or publisher slip (ms) past which a side counts as overloaded. A latency figure
#: carries the receiving loop's lag in full, and the playground's charts resolve tens of ms:
#: at 50 ms of lag, the tool's own delay is as large as the effects it is meant to show.
OVERLOAD_MS = 50.0

#: How long one overloaded sample keeps its side flagged: long enough that a header does not
#: flicker between two samples, short enough that recovery shows within a second.
OVERLOAD_HOLD_S = 1.0

#: Interval of the loop-lag probe. 20 Hz resolves a 50 ms stall and costs about 20 wake-ups a
#: second, nothing next to 1000+ messages a second.
PROBE_INTERVAL_S = 0.05

#: The reason a server gives when it cuts a connection whose client reads too slowly (its
#: send queue filled up). Every transport carries it to the client (ws close reason, SSE
#: ``closing`` event, WebTransport close capsule, WebRTC ``{"closing": …}``), so a client
#: too slow for the rate is labelled as that, never taken for a crash.
SLOW_CONSUMER = "consumer too slow: send queue full"


def cut_as_too_slow(reason: str) -> bool:
    """True when a disconnect's reason says the server cut this client for reading too slowly."""
    return SLOW_CONSUMER in reason


#: The meters keep a histogram, not samples: bucket edges grow by 5 % from 0.1 ms, so a
#: percentile is within 5 % of the truth, and a run of any length needs a few hundred
#: counters (under 400 up to 1000 s of delay). Summaries are cheap enough to send 10 times
#: a second.
RESOLUTION_MS = 0.1
GROWTH = 1.05
_LOG_GROWTH = math.log(GROWTH)


def _bucket(ms: float) -> int:
    return int(math.log1p(ms / RESOLUTION_MS) / _LOG_GROWTH)


def _upper(bucket: int) -> float:
    """The upper edge of ``bucket`` in ms: a percentile never understates a delay."""
    return RESOLUTION_MS * math.expm1((bucket + 1) * _LOG_GROWTH)


class DelayMeter:
    """Delays (loop lag or publisher slip) in ms: percentiles, maximum, time spent overloaded."""

    def __init__(self, threshold_ms: float = OVERLOAD_MS) -> None:
        self.threshold_ms = threshold_ms
        self._counts: dict[int, int] = {}
        self.samples = 0
        self.max_ms = 0.0
        """The largest delay recorded."""
        self.overloaded_s = 0.0
        """Seconds covered by samples over the threshold (each covers the time since the last)."""
        self._last_at: float | None = None
        self._over_until = -1.0

    def record(self, delay_ms: float, now: float) -> None:
        """One measured delay (ms), observed at ``now`` (monotonic s)."""
        delay_ms = max(0.0, delay_ms)
        bucket = _bucket(delay_ms)
        self._counts[bucket] = self._counts.get(bucket, 0) + 1
        self.samples += 1
        self.max_ms = max(self.max_ms, delay_ms)
        if delay_ms > self.threshold_ms:
            self.overloaded_s += delay_ms / 1000 if self._last_at is None else now - self._last_at
            self._over_until = now + OVERLOAD_HOLD_S
        self._last_at = now

    def overloaded(self, now: float) -> bool:
        """True while a recent sample (within :data:`OVERLOAD_HOLD_S`) was over the threshold."""
        return now < self._over_until

    def percentile(self, q: float) -> float | None:
        """The ``q``-quantile (0..1), nearest rank, as its bucket's upper edge (never above the max)."""
        if not self.samples:
            return None
        rank = max(1, math.ceil(q * self.samples))
        seen = 0
        for bucket in sorted(self._counts):
            seen += self._counts[bucket]
            if seen >= rank:
                return min(_upper(bucket), self.max_ms)
        return self.max_ms

    def summary(self) -> dict[str, float | None]:
        """``{"p50", "p99", "max"}`` in ms (None before the first sample)."""
        if not self.samples:
            return {"p50": None, "p99": None, "max": None}
        return {
            "p50": round(self.percentile(0.50) or 0.0, 2),
            "p99": round(self.percentile(0.99) or 0.0, 2),
            "max": round(self.max_ms, 2),
        }


@dataclass(frozen=True, slots=True)
class SideHealth:
    """One process's view of itself, as the control API and the session pass it on."""

    loop_lag_ms: dict[str, float | None]
    """``{"p50", "p99", "max"}`` of the loop-lag probe."""
    publisher_slip_ms_max: float | None
    """How far behind its schedule the publisher ever published (None: no publisher here)."""
    overloaded: bool
    """Over :data:`OVERLOAD_MS` within the last :data:`OVERLOAD_HOLD_S`."""
    overloaded_s: float
    """Seconds this side spent overloaded."""

    def to_json(self) -> dict[str, Any]:
        return {
            "loop_lag_ms": self.loop_lag_ms,
            "publisher_slip_ms_max": self.publisher_slip_ms_max,
            "overloaded": self.overloaded,
            "overloaded_s": round(self.overloaded_s, 3),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SideHealth:
        """Parse :meth:`to_json`'s output (e.g. from ``GET /control/status``); ValueError if malformed."""
        try:
            lag = {k: obj["loop_lag_ms"][k] for k in ("p50", "p99", "max")}
            slip = obj["publisher_slip_ms_max"]
            return cls(lag, None if slip is None else float(slip), bool(obj["overloaded"]), float(obj["overloaded_s"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed health: {exc!r}") from None


class OverloadClock:
    """Seconds during which either side was overloaded, fed by the client's probe."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._last: float | None = None
        self._was_over = False

    def update(self, overloaded: bool, now: float) -> None:
        if self._last is not None and (overloaded or self._was_over):
            self.seconds += now - self._last
        self._last, self._was_over = now, overloaded


def health_report(client: SideHealth, server: SideHealth | None, overloaded_s: float) -> dict[str, Any]:
    """The JSON report's ``health`` section (field names are a contract)."""
    empty = {"p50": None, "p99": None, "max": None}
    return {
        "server_loop_lag_ms": server.loop_lag_ms if server else empty,
        "client_loop_lag_ms": client.loop_lag_ms,
        "publisher_slip_ms_max": server.publisher_slip_ms_max if server else None,
        "overloaded_s": round(overloaded_s, 3),
        "threshold_ms": OVERLOAD_MS,
    }


def overload_warning(health: dict[str, Any]) -> str | None:
    """A one-line warning when a run's figures are unreliable (None when the tool kept up)."""
    sides = [
        side
        for side, key in (("server", "server_loop_lag_ms"), ("client", "client_loop_lag_ms"))
        if (health[key]["max"] or 0) > health["threshold_ms"]
    ]
    slip = health["publisher_slip_ms_max"]
    if slip is not None and slip > health["threshold_ms"] and "server" not in sides:
        sides.insert(0, "server")
    if not sides:
        return None
    return (
        f"WARNING: the {' and '.join(sides)} event loop was overloaded for {health['overloaded_s']:.1f} s "
        f"(lag or publisher slip over {health['threshold_ms']:g} ms): latency and loss figures are unreliable"
    )


class LoopMonitor:
    """Samples this process's event-loop lag into a :class:`DelayMeter` (the only I/O here: a sleep)."""

    def __init__(self, meter: DelayMeter | None = None, clock: Callable[[], float] = time.perf_counter) -> None:
        self.meter = meter or DelayMeter()
        self.clock = clock
        self.on_sample: Callable[[float], None] | None = None
        """Called with ``now`` after each sample (e.g. to update an :class:`OverloadClock`)."""
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="rtplay-loop-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            before = self.clock()
            await asyncio.sleep(PROBE_INTERVAL_S)
            now = self.clock()
            # perf_counter, not loop.time(): uvloop's clock moves in 1 ms steps.
            self.meter.record((now - before - PROBE_INTERVAL_S) * 1000, now)
            if self.on_sample is not None:
                self.on_sample(now)
