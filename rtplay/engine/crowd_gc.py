"""A crowd worker's garbage collector: its pauses measured, and its connected crowd frozen.

A slice of 5,000 WebSocket clients keeps about a gigabyte of Python objects alive. CPython's
full (generation 2) collection walks every tracked object, and while it runs the event loop
runs nothing: every retry timer that comes due during the pause fires after it, at once. A
0.9 s pause packs 0.9 s of a jittered policy's attempts into one 100 ms bin, a herd that the
generator made and the policy did not (measured before this module: 62 full collections per
worker in a 10,000-client outage run, pauses up to 4 s on a loaded machine, attempts up to
9 s late against their policy's due time at the 99th percentile).

So a slice *settles* its heap when every one of its clients is connected, the one moment no
retry is due: one full collection, then every object still alive goes to the collector's
permanent generation (``gc.freeze()``, Python ≥ 3.7: "ignore all the future collections"),
and while frozen the collector's oldest-generation threshold is raised so that no automatic
full collection walks a reconnect wave's new connections in the middle of the wave. Frozen
objects are still freed by reference counting; frozen *cyclic* garbage (a dropped
connection's objects) is freed at the next settling, which unfreezes before it collects, or
when the last slice of the worker stops and the freeze is lifted (``gc.unfreeze()``).

:class:`GcPauses` measures every collection's pause (``gc.callbacks``) so a worker's figures
say how long its loop stood still for the collector.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

#: The collector's oldest-generation threshold while frozen: young-generation collections
#: between two automatic full ones (CPython's default is 10; it also waits until a quarter more
#: objects have survived since the last). With :data:`YOUNG_THRESHOLD` and the middle 10, a
#: full collection comes after 10 million net allocations instead of 70,000 (2,000 per client
#: of a 5,000-client slice), so a reconnect wave runs without one and the settling after it
#: collects what the wave left. A crowd that never gets back still collects in full now and
#: then, so its garbage stays bounded.
OLD_THRESHOLD = 100

#: The collector's youngest-generation threshold in a crowd worker, once frozen: allocations
#: (net of frees) between two young collections. CPython's default, 700, makes a reconnecting
#: crowd of 5,000 run a young collection every few dozen attempts; each walks what is young,
#: so fewer collections cost the same or less in all, and the short-lived cycles a refused
#: attempt leaves (an exception and its traceback) are still found while young.
YOUNG_THRESHOLD = 10_000


class GcPauses:
    """The pauses of this process's garbage collections, through ``gc.callbacks``.

    ``clock`` is a monotonic clock in seconds (injected: tests drive :meth:`callback` directly).
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._started: float | None = None
        self.count = 0
        """Collections seen."""
        self.total_s = 0.0
        """Seconds the process spent collecting."""
        self.max_s = 0.0
        """The longest single pause."""
        self.full = 0
        """Full (generation 2) collections seen."""

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        """``gc.callbacks``' hook: ``start`` and ``stop`` of one collection."""
        now = self._clock()
        if phase == "start":
            self._started = now
            return
        if self._started is None:  # installed in the middle of a collection
            return
        pause, self._started = now - self._started, None
        self.count += 1
        self.total_s += pause
        self.max_s = max(self.max_s, pause)
        self.full += info.get("generation") == 2

    def restart(self) -> None:
        """Count from now on (a slice restarts once its crowd is in: the run's pauses, not the set-up's)."""
        self.count, self.total_s, self.max_s, self.full = 0, 0.0, 0.0, 0

    def install(self) -> None:
        """Start measuring (idempotent)."""
        if self.callback not in gc.callbacks:
            gc.callbacks.append(self.callback)

    def remove(self) -> None:
        """Stop measuring."""
        if self.callback in gc.callbacks:
            gc.callbacks.remove(self.callback)

    def figures(self) -> dict[str, float]:
        """The pauses so far, for a worker's figures."""
        return {
            "gc_s": round(self.total_s, 3),
            "gc_pause_max_ms": round(self.max_s * 1000, 1),
            "gc_full": self.full,
        }


class HeapFreeze:
    """``gc.freeze()`` for as long as at least one slice of this process holds it.

    The collector is one per process and a worker may run several slices (one per transport);
    the freeze is lifted when the last holder releases it. Use :data:`HEAP_FREEZE`.
    """

    def __init__(self) -> None:
        self._holders: set[int] = set()
        self._threshold: tuple[int, int, int] | None = None

    @property
    def held(self) -> bool:
        """Whether any slice holds the freeze."""
        return bool(self._holders)

    def hold(self, holder: object) -> None:
        """``holder``'s clients are all connected: collect everything (what earlier freezes
        kept included), freeze what is alive, raise the thresholds while anyone holds."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        if not self._holders:
            self._threshold = before = gc.get_threshold()
            gc.set_threshold(max(YOUNG_THRESHOLD, before[0]), before[1], max(OLD_THRESHOLD, before[2]))
        self._holders.add(id(holder))

    def release(self, holder: object) -> None:
        """``holder`` stops: the last one out unfreezes the heap and restores the thresholds."""
        if id(holder) not in self._holders:
            return
        self._holders.discard(id(holder))
        if not self._holders:
            gc.unfreeze()
            if self._threshold is not None:
                gc.set_threshold(*self._threshold)
                self._threshold = None


#: The process's one freeze (the collector is one per process).
HEAP_FREEZE = HeapFreeze()
