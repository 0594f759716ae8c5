"""The server process's garbage-collector thresholds.

CPython collects its youngest generation every 700 new container objects, the middle one every
10 of those, and everything (a full pass over every live object) every 10 middle ones once the
objects promoted since the last full pass are a quarter of the rest. A server holding thousands
of requests hits all three all the time: each held long-poll's request, task and frames live
about a second (until the next message), long enough to be promoted, so every wave of answers
promotes a generation's worth of objects and sets off a full pass over all the connections'
objects. Measured with 3,000 held long-polls at 1 msg/s: 364 ms of collection per wave out of
417 ms of the server's CPU, full passes of 200-300 ms holding the loop (a wave of answers, and
every other client, waited behind them).

With the youngest generation collected every :data:`GEN0_OBJECTS` objects, the middle one every
:data:`GEN1_COLLECTIONS` of those and full passes at most every :data:`GEN2_COLLECTIONS` middle
ones, a held request has died young by the time its generation is collected: the same 3,000
held long-polls cost 122 ms of collection per wave, none of it a full pass. Reference cycles
are still collected (young ones within a few hundred thousand allocations), and the server
still runs a full collection after a burst of connections ends (:mod:`rtplay.runtime.memory`).

The client side keeps what its start-up built out of the collector's full passes instead
(:func:`start_up_heap_frozen`, and the playground's ``gc.freeze()``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: New container objects between two collections of the youngest generation (CPython: 700). A
#: collection of it costs about 2-3 ms at this size; a request allocates ~50 such objects, so
#: this is one collection per ~200 requests instead of one per ~14.
GEN0_OBJECTS = 10_000

#: Young collections between two collections of the middle generation (CPython: 10): about
#: 200,000 objects, ~1 s of a 5,000-a-second wave of held requests, which are then answered.
GEN1_COLLECTIONS = 20

#: Middle collections at least between two full passes (CPython: 10; CPython also waits until
#: the promoted objects are a quarter of the long-lived ones). At 5,000 held long-polls a
#: second (~25 young collections a second), a full pass comes at most every ~80 s instead of
#: every wave or two.
GEN2_COLLECTIONS = 100

SERVER_THRESHOLDS = (GEN0_OBJECTS, GEN1_COLLECTIONS, GEN2_COLLECTIONS)
"""What :func:`use_server_thresholds` sets, as :func:`gc.set_threshold` takes them."""


def use_server_thresholds() -> tuple[int, int, int]:
    """Set :data:`SERVER_THRESHOLDS` for this process; returns the thresholds it replaced."""
    before = gc.get_threshold()
    gc.set_threshold(*SERVER_THRESHOLDS)
    return before


@contextlib.contextmanager
def start_up_heap_frozen() -> Iterator[None]:
    """Freeze every object alive now (:func:`gc.freeze`) until the block ends, then thaw them.

    What a session's start-up builds (the imports, the clients, their peers, Chromium's driver:
    ~100,000 objects with ``--browser``) lives as long as the run, yet every full collection
    walked all of it: 90-110 ms holding the client's loop, and the second full pass of a run
    fell just when the clients reconnected after a fault, so a WebTransport session's CONNECT
    left that much later than the browser's and its datagram channel lost up to 8 messages more
    at 50 msg/s. Frozen, a full pass walks only what the run itself made (the client's worst
    loop lag in 14 such runs: 28-344 ms before, 6-86 ms after). Thawed at the end so a process
    that runs several sessions (variants, tests) frees each one's garbage.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
