"""Items 9 and 13: the memory a burst of connections used comes back once it has left.

Two things kept it: the server's registries of live connections kept the tables they grew to
(CPython's sets and dicts never shrink on removal), and objects allocated while a burst was
served that live on long after it: each of them pins one of the 1 MiB pymalloc arenas the burst
filled. The load meter made two or three a 100 ms bin and kept them an hour (at 4,000
subscribers, ~540 of the ~1,150 objects found alive in pools the burst had filled); it now
keeps its bins in arrays. Other such survivors remain (README, "What a subscriber costs").
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

from servers.core.connections import ConnectionRegistry
from servers.core.hub import Hub
from servers.core.load import LoadMeter
from servers.core.pubsub import Broadcaster
from servers.http.ws_heartbeat import HeartbeatWheel

BURST = 5000
"""Connections in a burst: their registries' tables are hundreds of KiB."""

LEFT_BEHIND_BYTES = 24 * 1024
"""What a registry may still hold once the burst has gone and one connection remains: a
table sized for a few dozen entries, not for the burst (the old code kept 128-512 KiB)."""


@contextmanager
def traced() -> Iterator[Callable[[], int]]:
    """Bytes allocated since the block began and still held (after a full collection: a
    context manager's frames hold on to what they saw in a cycle), as a callable."""

    def held() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - baseline

    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        yield held
    finally:
        tracemalloc.stop()


def test_the_connection_registry_lets_a_bursts_table_go_once_it_has_left() -> None:
    registry = ConnectionRegistry(clock=lambda: 0.0)  # one load bin: only the table can grow
    aborts = [lambda: None for _ in range(BURST + 1)]
    with traced() as held:
        with registry.track("sse", aborts[0]):
            with ExitStack() as burst:
                for abort in aborts[1:]:
                    burst.enter_context(registry.track("sse", abort))
                assert registry.count("sse") == BURST + 1
                assert held() > 10 * LEFT_BEHIND_BYTES
            del burst
            assert registry.count("sse") == 1
            assert held() < LEFT_BEHIND_BYTES


def test_the_broadcaster_lets_a_bursts_subscriber_table_go_once_it_has_left() -> None:
    broadcaster = Broadcaster(Hub(capacity=1))
    stay, _ = broadcaster.subscribe(0)
    with traced() as held:
        subs = [broadcaster.subscribe(0)[0] for _ in range(BURST)]
        for sub in subs:
            broadcaster.unsubscribe(sub)
        del subs, sub
        assert broadcaster.subscriber_count == 1
        assert held() < LEFT_BEHIND_BYTES
    envelope = broadcaster.publish(now_ms=1.0)
    assert stay.drain(10) == [envelope]  # the one that stayed is still served


def test_the_websocket_heartbeat_lets_a_bursts_peers_go_once_they_have_left() -> None:
    wheel = HeartbeatWheel(lambda: 0.0)  # no checks: only the table is under test
    stay = wheel.add(lambda: 0, lambda: None, lambda: None)
    with traced() as held:
        forgets = [wheel.add(lambda: 0, lambda: None, lambda: None) for _ in range(BURST)]
        for forget in forgets:
            forget()
        del forgets, forget
        assert len(wheel) == 1
        assert held() < LEFT_BEHIND_BYTES
    stay()
    assert len(wheel) == 0


BINS = 3000
"""100 ms bins a burst's load is recorded in (five minutes)."""

PER_BIN_BYTES = 4
"""What a recorded bin may leave allocated at most, on average: nothing of its own (the old
meter kept an int and a float per bin and series, 50-100 bytes a bin each)."""


def test_the_load_meter_keeps_no_object_per_bin() -> None:
    meter = LoadMeter()  # its arrays are made here, before the trace
    with traced() as held:
        for b in range(BINS):
            t = 100.0 + b / 10
            meter.accepted(t)
            meter.lag(t, 0.003)
            meter.closed(t + 0.05)
        assert held() < BINS * PER_BIN_BYTES
    series = meter.series()
    assert len(series["loop_lag_ms"]) == len(series["concurrent"]) == BINS  # every bin is still reported
    assert series["peak_concurrent"] == 1 and series["max_loop_lag_ms"] == 3.0
