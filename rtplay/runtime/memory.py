"""Give memory back to the system after a burst of connections has gone.

glibc's ``malloc`` keeps the pages it freed: a burst of slow readers or subscribers fills its
heap with buffers (answer pieces, transport buffers, per-connection objects), and once they are
freed the heap is mostly free space pinned by a few live blocks scattered through it, which
``free()`` alone never returns (measured: 1,000 slow readers left 106 MB free inside the heap,
12 MB in use, RSS 188 MB against 59 MB before). ``malloc_trim(0)`` (glibc >= 2.8) hands every
free page inside the heap back with ``madvise``, not only the top; it costs a walk of the heap
(about 24 ms after that burst, 3 ms when there is little to return), so it runs once after a
burst settles, never per connection.

A trim returns only what was freed: memory held by reference cycles waits for Python's next
full collection (seconds to minutes later). Endpoints therefore end a failed connection without
letting an exception carry its frames, and what they held, into a cycle
(:func:`servers.http.answers.send_pieces`).

:class:`TrimSchedule` is the decision, pure (``now`` is passed in); :class:`MemoryReturn` is
the adapter that keeps its two event-loop timers (the burst's trim, its follow-up) and calls
:func:`malloc_trim`.

A trim reaches only glibc's heap. Python's own small-object allocator (pymalloc) keeps its
objects in 1 MiB arenas of 16 KiB pools and gives an arena back only once every object in it is
gone; it never returns a free pool inside a live arena. After a burst, a few hundred objects that
outlive it pin most of the arenas the burst filled: the last ~250 freed objects of each type
uvloop and aiohttp keep on their Cython free lists (``DEFAULT_FREELIST_SIZE``: handles, timer
handles, stream transports, parsed request heads), the
first-use caches of an endpoint, the envelopes published meanwhile (measured: 3,000 subscribers
took pymalloc from 19 to 70 arenas and left 69 behind, 45 MB of them free pools, with no object
of theirs still alive; 2,000 subscribers: 24 arenas before, 57 after, ~280 pools of them in use
by ~3,000 small objects, 132 of them tracked by the collector; neither the load meter's
per-bin series nor uvloop's handle free lists alone were what held them). 10,000 subscribers
at 1 msg/s, counted in the server after they left, collected and trimmed: as many objects alive
as before the burst (66,400 against 73,700), none frozen (the server never calls
``gc.freeze``), glibc's heap trimmed (14.6 MB in use, its 43 MB free not resident), and
pymalloc at 128-170 arenas against 24 before, with the same 24 MB in blocks and 105-142 MB in
free pools: pinned by ~1,150 objects, reachable from the collector's, that were made during
or after the burst and lie in pools only the burst had used (the load meter's bins, ~540 of
them at 4,000 subscribers, until it kept them in arrays; the envelopes published meanwhile,
which the replay buffer keeps 10,000 s at 1 msg/s: copying them afresh freed 8 arenas of 95;
first-use caches) and by allocations no Python object refers to (tracemalloc: ~700 blocks
made from the loop's own callbacks, uvloop's timer-handle and handle free lists, 250 each).
Each pins its whole arena, so removing one kind of them frees little while the others stay. Under
``PYTHONMALLOC=malloc`` those survivors pin 4 KiB pages that a trim works around, but glibc's
allocator is slower at a connection's and a request's many small objects: a publish's fan-out
to 10,000 subscribers took 10-25 % longer and held long-polls were answered a quarter slower
(README, "What a subscriber costs the server"), so it is the user's choice, not the default.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import functools
import logging
import sys
from collections.abc import Callable, Sized

log = logging.getLogger(__name__)

#: Connections (or large answers) that must end before a trim is worth its heap walk: a
#: streaming connection or a big answer holds tens to hundreds of KiB while it lives, so 128 of
#: them are megabytes; a handful of ordinary clients coming and going never trigger one.
TRIM_AFTER_RELEASES = 128

#: How long after the threshold is reached the trim runs: a burst's connections go within
#: about a second of each other, and trimming in the middle returns only part of it.
TRIM_SETTLE_S = 1.0

#: Shortest time between two trims: under constant churn a trim (a few ms) runs at most this
#: often, a fraction of a percent of the loop.
TRIM_MIN_GAP_S = 2.0

#: One more trim this long after a burst's: what the server allocated during the burst and
#: keeps a while sat among the burst's freed buffers and kept their pages from the first trim,
#: above all the envelopes published meanwhile, which the replay buffer holds until it turns
#: over (10,000 envelopes: 10 s at 1000 msg/s). 12 s later they are gone at any rate up to
#: 1000 msg/s and their pages can go back; the extra trim costs a few ms once per burst.
TRIM_FOLLOW_UP_S = 12.0


class TrimSchedule:
    """When to give freed memory back: after enough releases, once they settle (pure).

    Call :meth:`released` for every connection or large answer that ends; when it returns a
    time, arm a timer for it (only one is ever pending); when the timer fires call
    :meth:`fire`, and trim if it says so.
    """

    def __init__(
        self, after: int = TRIM_AFTER_RELEASES, settle_s: float = TRIM_SETTLE_S, min_gap_s: float = TRIM_MIN_GAP_S,
        follow_up_s: float = TRIM_FOLLOW_UP_S,
    ) -> None:
        if after < 1:
            raise ValueError("after must be at least 1")
        self.after = after
        self.settle_s = settle_s
        self.min_gap_s = min_gap_s
        self.follow_up_s = follow_up_s
        self.pending = 0
        """Releases since the last trim."""
        self._armed = False
        self._last_trim: float | None = None

    def released(self, now: float, count: int = 1) -> float | None:
        """Count ``count`` releases; the time a trim is due when a timer must be armed now."""
        self.pending += count
        if self._armed or self.pending < self.after:
            return None
        self._armed = True
        due = now + self.settle_s
        if self._last_trim is not None:
            due = max(due, self._last_trim + self.min_gap_s)
        return due

    def fire(self, now: float) -> bool:
        """The armed timer fired: True to trim now (the count starts over)."""
        self._armed = False
        if self.pending < self.after:
            return False
        self.pending = 0
        self._last_trim = now
        return True

    def follow_up(self, trimmed_at: float) -> float:
        """When to trim once more after a burst's trim at ``trimmed_at`` (one pending follow-up
        at most: a later burst's trim replaces it)."""
        return trimmed_at + self.follow_up_s


#: A set or dict smaller than this is never rebuilt: a table for a few dozen entries is not
#: worth a copy.
SHRINK_MIN_BYTES = 16 * 1024

#: Bytes per entry past which a set or dict counts as oversized. CPython's sets and dicts
#: keep the table they grew to when entries are removed (a registry that held 10,000
#: connections keeps a 256-512 KiB table for none); one built afresh takes 30-70 bytes an
#: entry, so 256 means at least four times too big, and a rebuild happens only after the
#: count fell fourfold: its O(n) copy costs O(1) per removal, amortized.
SHRINK_BYTES_PER_ENTRY = 256


def oversized(container: Sized) -> bool:
    """True when ``container`` (a set or dict) is worth rebuilding at its present size:
    call it after removing entries, and replace the container with a copy when it says so."""
    size = sys.getsizeof(container)
    return size >= SHRINK_MIN_BYTES and size > SHRINK_BYTES_PER_ENTRY * len(container)


@functools.cache
def _load_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS); looked up
    at the first trim (``find_library`` runs ``ldconfig``: ~25 ms no client should wait for)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        function = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    trim: Callable[[int], int] = function
    return trim


def malloc_trim() -> bool:
    """Return the C heap's free pages to the system; False where glibc's trim is unavailable."""
    trim = _load_trim()
    if trim is None:
        return False
    trim(0)
    return True


class MemoryReturn:
    """The adapter: counts releases, keeps one timer on the running loop, and trims after a
    burst and once more :data:`TRIM_FOLLOW_UP_S` later (``trim`` is injectable: a test counts
    the trims)."""

    def __init__(self, schedule: TrimSchedule | None = None, trim: Callable[[], bool] = malloc_trim) -> None:
        self.schedule = schedule or TrimSchedule()
        self._trim = trim
        self._timer: asyncio.TimerHandle | None = None
        self._follow_up: asyncio.TimerHandle | None = None
        self._closed = False
        self.trims = 0
        """Trims run so far."""

    def released(self, count: int = 1) -> None:
        """``count`` connections or large answers ended (call from the event loop)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        due = self.schedule.released(loop.time(), count)
        if due is not None:
            self._timer = loop.call_at(due, self._fire)

    def burst_ended(self) -> None:
        """One release that weighs as much as a burst (a peer let go for hoarding up to a MiB
        of send buffers): trim once it settles, as after a burst."""
        self.released(self.schedule.after)

    def _fire(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self.schedule.fire(now):
            self._run_trim()
            if self._follow_up is not None:
                self._follow_up.cancel()
            self._follow_up = loop.call_at(self.schedule.follow_up(now), self._fire_follow_up)

    def _fire_follow_up(self) -> None:
        self._follow_up = None
        self._run_trim()

    def _run_trim(self) -> None:
        self.trims += 1
        if self._trim():
            log.debug("returned freed heap memory to the system (trim %d)", self.trims)

    def close(self) -> None:
        """Cancel a pending trim and arm no more (the server is stopping)."""
        self._closed = True
        for timer in (self._timer, self._follow_up):
            if timer is not None:
                timer.cancel()
        self._timer = self._follow_up = None
