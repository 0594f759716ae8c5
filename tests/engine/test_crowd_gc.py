"""A crowd worker's collector: pauses measured, the connected crowd frozen out of its walks."""

from __future__ import annotations

import asyncio
import gc

import pytest

from rtplay.clients import Endpoints
from rtplay.engine import crowd_slice
from rtplay.engine.crowd_gc import YOUNG_THRESHOLD, GcPauses, HeapFreeze
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
    before = gc.get_threshold()
    try:
        freeze.hold(one)
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[0] == max(YOUNG_THRESHOLD, before[0])
        freeze.hold(two)
        freeze.release(one)
        assert freeze.held and gc.get_freeze_count() > 0  # the other slice still runs
        freeze.release(two)
        freeze.release(two)  # twice is harmless
        assert not freeze.held and gc.get_freeze_count() == 0 and gc.get_threshold() == before
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


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

    def hold(self, holder: object) -> None:
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
