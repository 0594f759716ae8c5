"""A crowd worker's collector: pauses measured, the connected crowd frozen out of its walks."""

from __future__ import annotations

import asyncio
import gc

import pytest

from rtplay.clients import Endpoints
from rtplay.engine import crowd_slice
from rtplay.engine.crowd_gc import GARBAGE_BUDGET_KB, GcPauses, HeapFreeze
from rtplay.engine.crowd_slice import RESETTLE_FRACTION, CrowdSlice, SliceConfig
from rtplay.model.events import Connected, Connecting, Disconnected
from servers.runner import Server


def test_gc_pauses_are_measured_from_start_to_stop() -> None:
    clock = iter([10.0, 10.25, 20.0, 20.01, 30.0]).__next__
    pauses = GcPauses(clock)
    pauses.callback("start", {"generation": 2})
    pauses.callback("stop", {"generation": 2, "collected": 5})
    pauses.callback("start", {"generation": 0})
    pauses.callback("stop", {"generation": 0, "collected": 0})
    pauses.callback("stop", {"generation": 0})  # no start seen (installed mid-collection): ignored
    assert pauses.figures() == {"gc_s": 0.26, "gc_pause_max_ms": 250.0, "gc_full": 1}
    pauses.restart()
    assert pauses.figures() == {"gc_s": 0.0, "gc_pause_max_ms": 0.0, "gc_full": 0}


def test_the_heap_stays_frozen_until_its_last_holder_releases_it() -> None:
    freeze, one, two = HeapFreeze(), object(), object()
    assert gc.isenabled()
    try:
        freeze.hold(one)
        assert gc.get_freeze_count() > 0 and not gc.isenabled()
        freeze.hold(two)
        freeze.release(one)
        assert freeze.held and gc.get_freeze_count() > 0 and not gc.isenabled()  # the other slice still runs
        freeze.release(two)
        freeze.release(two)  # twice is harmless
        assert not freeze.held and gc.get_freeze_count() == 0 and gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_settled_worker_walks_nothing_while_its_crowd_churns() -> None:
    """A reconnect wave frees old (frozen) objects as it makes new ones: CPython's young
    generation, counted net of frees, then grew to hundreds of thousands of objects before a
    "young" collection walked them all (50-300 ms each, dozens per wave)."""
    freeze, pauses, holder = HeapFreeze(), GcPauses(), object()
    crowd = [[i] for i in range(50_000)]  # the connected crowd's objects
    pauses.install()
    try:
        freeze.hold(holder)
        pauses.restart()
        for _ in range(4):  # the wave: every connection replaced by a new one
            crowd = [[i] for i in range(50_000)]
        assert pauses.count == 0 and len(crowd) == 50_000
    finally:
        pauses.remove()
        freeze.release(holder)
    assert gc.isenabled()


def test_a_crowd_away_for_long_settles_once_its_garbage_is_over_budget() -> None:
    freeze, holder = HeapFreeze(), object()
    assert not freeze.over_budget(10.0**9)  # nothing held: nothing to settle
    try:
        freeze.hold(holder, lambda: 1000.0)
        assert freeze.settled_kb == 1000.0
        assert not freeze.over_budget(1000.0 + GARBAGE_BUDGET_KB)
        assert freeze.over_budget(1001.0 + GARBAGE_BUDGET_KB)
    finally:
        freeze.release(holder)
    assert not freeze.over_budget(10.0**9) and freeze.settled_kb is None


async def test_a_slice_settles_mid_wave_only_past_the_garbage_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    freeze, rss = HeapFreeze(), [5000.0]
    monkeypatch.setattr(crowd_slice, "HEAP_FREEZE", freeze)
    monkeypatch.setattr(crowd_slice, "resident_kb", lambda: rss[0])
    part = CrowdSlice(SliceConfig("ws", 2, 0, 0, None, Endpoints("http://127.0.0.1:1")))
    emits = [part._emit_for(i) for i in range(2)]
    try:
        for i in range(2):
            emits[i](Connecting("ws", 0.0, 1))
            emits[i](Connected("ws", 0.1))
        assert part.settled and freeze.settled_kb == 5000.0
        emits[0](Disconnected("ws", 1.0, "lost"))  # away, and the worker grows
        rss[0] = 5000.0 + GARBAGE_BUDGET_KB
        await part.drain()
        assert freeze.settled_kb == 5000.0  # within budget: no pause mid-wave
        rss[0] += 1
        await part.drain()
        assert freeze.settled_kb == rss[0]  # past it: collected now, counted from here
    finally:
        freeze.release(part)


async def test_a_slice_freezes_its_crowd_once_every_client_has_connected(server: Server) -> None:
    config = SliceConfig("ws", 5, 0, 0, "fixed:30", Endpoints(server.http_url), ramp_per_s=1000.0)
    part = CrowdSlice(config)
    await part.start()
    try:
        async with asyncio.timeout(10):
            while part.recorder.connected_once < 5:
                assert not part.settled  # not before the last client is in
                await asyncio.sleep(0.01)
        assert part.settled and gc.get_freeze_count() > 0
        assert part.recorder.state_counts()["open"] == 5
    finally:
        answer = await part.stop(published=0, replay_from=1)
    assert gc.get_freeze_count() == 0  # the worker collects as before once its slice is gone
    assert answer["gc_full"] == 0  # counted from the settling on: nothing made the collector walk the crowd


class Holds:
    """A stand-in for the process's freeze that counts the settlings asked of it."""

    def __init__(self) -> None:
        self.count = 0

    def hold(self, holder: object, resident_kb: object = None) -> None:
        self.count += 1


def test_a_slice_settles_again_after_a_wave_but_not_after_one_client_reconnecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    holds = Holds()
    monkeypatch.setattr(crowd_slice, "HEAP_FREEZE", holds)
    part = CrowdSlice(SliceConfig("ws", 8, 0, 0, None, Endpoints("http://127.0.0.1:1")))
    emits = [part._emit_for(i) for i in range(8)]

    def reconnect(clients: range, at: float) -> None:
        for i in clients:
            emits[i](Disconnected("ws", at, "lost"))
        for i in clients:
            emits[i](Connecting("ws", at + 1, 2))
            emits[i](Connected("ws", at + 1.1))

    for i in range(8):
        emits[i](Connecting("ws", 0.0, 1))
        emits[i](Connected("ws", 0.1))
        assert holds.count == (1 if i == 7 else 0)  # settled once the last client is in
    reconnect(range(1), 5.0)  # one client on its own: no pause for it
    assert holds.count == 1
    assert 8 * RESETTLE_FRACTION <= 2
    reconnect(range(1, 3), 10.0)  # with the first, a quarter of the slice has reconnected
    assert holds.count == 2
    reconnect(range(8), 20.0)  # the outage's wave: settled again once all are back
    assert holds.count == 3 and part.reconnects_since_settled == 0
    emits[0](Disconnected("ws", 30.0, "lost"))
    for i in range(1, 8):  # not all connected: never settled mid-wave
        emits[i](Disconnected("ws", 30.0, "lost"))
        emits[i](Connected("ws", 31.0))
    assert holds.count == 3
