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

With the youngest generation collected every :data:`GEN0_OBJECTS` net new objects, the middle
one every :data:`GEN1_COLLECTIONS` of those and full passes at most every
:data:`GEN2_COLLECTIONS` middle ones, a held request has died young by the time its generation
is collected: the same 3,000 held long-polls cost 122 ms of collection per wave at 10,000, none
of it a full pass, and a wave's churn no longer sets off young collections at all (see
:data:`GEN0_OBJECTS`). Reference cycles
are still collected (young ones within a few hundred thousand allocations), and the server
still runs a full collection after a burst of connections ends (:mod:`rtplay.runtime.memory`).

The client side keeps what its start-up built out of the collector's full passes instead
(:func:`start_up_heap_frozen`, and the playground's ``gc.freeze()``).
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

#: Net new container objects between two collections of the youngest generation (CPython:
#: 700). CPython counts allocations less deallocations (never below 0), and collects when the
#: count passes this. Held long-polls churn: a wave frees the answered requests' objects (~60
#: each) and their re-requests allocate as many again, in turns of a few hundred
#: (servers.http.longpoll.ANSWERS_PER_TURN): the count swings by some 15,000 a turn (256 x ~60).
#: At 10,000, the swings set off young collections that walked the requests held since: 10,000
#: held long-polls at 1 msg/s spent 4.0-4.4 s of 21 s in young collections and answered
#: 107,000-117,000 of 150,000 in 15 s. The churn never nets 300,000 (growth does: new
#: connections, uncollected cycles), so it sets off none: 0.36 s, 151,696 answered (100,000:
#: 1.0 s and 145,000; 50,000: 1.3 s and 133,000; same machine, one session). The longest
#: collection in those runs was 0.25-0.34 s at every threshold, 10,000 included; cycles wait
#: longer to be freed (the server collects after a burst of connections anyway,
#: rtplay.runtime.memory).
GEN0_OBJECTS = 300_000

#: Young collections between two collections of the middle generation (CPython: 10): what
#: survived 20 young collections (millions of net new objects) is walked again only then.
GEN1_COLLECTIONS = 20

#: Middle collections at least between two full passes (CPython: 10; CPython also waits until
#: the promoted objects are a quarter of the long-lived ones): with the two thresholds below
#: it, a full pass over every connection's objects is rare (none in a 10,000 held long-poll
#: run; at 700/10/10 they came every wave or two).
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
