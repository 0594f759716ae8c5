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
and while frozen the collector runs *only* when the slice settles again: automatic
collection is off (``gc.disable()``). Raised thresholds were not enough: CPython counts a
young generation's size as allocations *net of frees*, and a reconnect wave frees the old
connections' (frozen) objects as fast as it makes new ones, so a "young" collection found
hundreds of thousands of objects and paused the loop 50-300 ms, 68 times in 14 s (a
5,000-client slice through a 5 s outage: 1.8-3 s of the 14 in the collector, attempts
0.24-0.6 s late at the 99th percentile; with collection off, none and 0.13 s, and the slice's
refused attempts 1.5x as fast). The garbage a wave leaves (40-75 MB for that slice) waits for the next
settling, which unfreezes before it collects, or for the last slice of the worker to stop;
a crowd that never gets back settles anyway once the worker has grown
:data:`GARBAGE_BUDGET_KB` since it last settled (:meth:`HeapFreeze.over_budget`).

:class:`GcPauses` measures every collection's pause (``gc.callbacks``) so a worker's figures
say how long its loop stood still for the collector.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

#: Growth of a worker's resident memory since its heap was last settled past which a slice
#: settles it again though not every client is back (a pause, but a bounded heap): with
#: automatic collection off, cyclic garbage waits for a settling. One outage wave of a
#: 5,000-client slice leaves 40-75 MB, so several waves fit before a forced pause, and a
#: worker of 1.2 GB (5,000 ws clients) stays within a quarter of its size.
GARBAGE_BUDGET_KB = 256 * 1024


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
    """``gc.freeze()`` with automatic collection off, for as long as at least one slice of
    this process holds it.

    The collector is one per process and a worker may run several slices (one per transport);
    the freeze is lifted (and collection back as it was) when the last holder releases it.
    Use :data:`HEAP_FREEZE`.
    """

    def __init__(self) -> None:
        self._holders: set[int] = set()
        self._was_enabled: bool | None = None
        self.settled_kb: float | None = None
        """The process's resident memory right after the last settling (None: not held)."""

    @property
    def held(self) -> bool:
        """Whether any slice holds the freeze."""
        return bool(self._holders)

    def hold(self, holder: object, resident_kb: Callable[[], float] | None = None) -> None:
        """``holder``'s clients are all connected (or its garbage is over budget): collect
        everything (what earlier freezes kept included), freeze what is alive, and keep
        automatic collection off while anyone holds; ``resident_kb`` measures the heap after."""
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        if not self._holders:
            self._was_enabled = gc.isenabled()
            gc.disable()
        self._holders.add(id(holder))
        self.settled_kb = resident_kb() if resident_kb is not None else None

    def over_budget(self, resident_kb: float) -> bool:
        """Has the process grown :data:`GARBAGE_BUDGET_KB` since it last settled (time to settle
        again, whoever is still away)?"""
        return self.held and self.settled_kb is not None and resident_kb - self.settled_kb > GARBAGE_BUDGET_KB

    def release(self, holder: object) -> None:
        """``holder`` stops: the last one out unfreezes the heap and gives collection back."""
        if id(holder) not in self._holders:
            return
        self._holders.discard(id(holder))
        if not self._holders:
            gc.unfreeze()
            if self._was_enabled:
                gc.enable()
            self._was_enabled = self.settled_kb = None


#: The process's one freeze (the collector is one per process).
HEAP_FREEZE = HeapFreeze()
