"""Overload meters (pure), the publisher's schedule on both loops, and the health a report carries."""

from __future__ import annotations

import asyncio
import itertools
import time

import aiohttp
import pytest

from rtplay.engine.session import SessionConfig
from rtplay.protocol.faults import Kind
from rtplay.runtime.health import (
    GROWTH,
    OVERLOAD_HOLD_S,
    OVERLOAD_MS,
    DelayMeter,
    OverloadClock,
    SideHealth,
    health_report,
    overload_warning,
)
from servers.core.hub import Hub
from servers.core.pubsub import Broadcaster, Publisher
from servers.runner import Server
from tests.conftest import LocalSession, fast_client_options, fast_server_config, wait_until

# --- the pure meters -------------------------------------------------------------------------


def test_delay_meter_percentiles_max_and_time_overloaded() -> None:
    meter = DelayMeter(threshold_ms=50)
    assert meter.summary() == {"p50": None, "p99": None, "max": None}
    for i in range(100):
        meter.record(1.0 + (i >= 98) * 199, now=i * 0.05)  # two 200 ms stalls in 100 samples
    summary = meter.summary()
    assert 1.0 <= summary["p50"] <= 1.0 * GROWTH + 0.01  # never understated, within a bucket (+ rounding)
    assert (summary["p99"], summary["max"]) == (200.0, 200.0)
    assert meter.overloaded_s == pytest.approx(0.1)  # each stalled sample covers one interval
    assert meter.overloaded(99 * 0.05 + OVERLOAD_HOLD_S / 2)
    assert not meter.overloaded(99 * 0.05 + OVERLOAD_HOLD_S + 0.01)


def test_delay_meter_clamps_early_wakeups_and_keeps_a_bounded_histogram() -> None:
    meter = DelayMeter()
    meter.record(-0.4, now=0.0)  # a probe that woke early is no lag, not a negative one
    assert meter.summary() == {"p50": 0.0, "p99": 0.0, "max": 0.0}
    for i in range(100_000):  # an hour and a half at 20 Hz, lags from 0 to 100 s
        meter.record(i, now=i * 0.05)
    assert len(meter._counts) < 400
    assert meter.percentile(0.5) == pytest.approx(50_000, rel=0.05)


def test_overload_clock_counts_time_while_either_side_is_over() -> None:
    clock = OverloadClock()
    for now, over in ((0.0, False), (1.0, True), (2.0, True), (3.0, False), (4.0, False)):
        clock.update(over, now)
    assert clock.seconds == pytest.approx(3.0)  # 0→1, 1→2 and 2→3 each touched an overloaded sample


def test_warning_names_the_overloaded_side_and_none_when_fine() -> None:
    calm = SideHealth({"p50": 1, "p99": 3, "max": 9}, None, False, 0.0)
    busy = SideHealth({"p50": 20, "p99": 80, "max": 120}, 4.0, True, 2.5)
    assert overload_warning(health_report(calm, calm, 0.0)) is None
    warning = overload_warning(health_report(calm, busy, 2.5))
    assert warning is not None and "server event loop" in warning and "unreliable" in warning
    assert "client" not in warning
    slipped = SideHealth({"p50": 1, "p99": 3, "max": 9}, 300.0, True, 1.0)
    assert "server" in (overload_warning(health_report(busy, slipped, 1.0)) or "")


def test_side_health_round_trips_through_json_and_refuses_garbage() -> None:
    health = SideHealth({"p50": 1.0, "p99": 2.0, "max": 3.0}, 0.5, False, 0.0)
    assert SideHealth.from_json(health.to_json()) == health
    with pytest.raises(ValueError):
        SideHealth.from_json({"loop_lag_ms": 3})


# --- the publisher, on both loops --------------------------------------------------------------


async def test_publisher_keeps_its_rate_without_spinning_a_tick_at_a_time() -> None:
    # uvloop's clock moves in 1 ms steps; aiming a wake-up between two steps used to spin
    # until the clock ticked over: thousands of wake-ups for a few hundred messages. And a
    # wake-up costs more than a message: at 1000 msg/s the publisher wakes once per tick
    # (4 ms, ~4 messages), not once per message.
    publisher = Publisher(Broadcaster(Hub()), rate=1000)
    publisher.start()
    try:
        await wait_until(lambda: publisher.broadcaster.hub.last_seq >= 300, what="300 published")
    finally:
        await publisher.stop()
    per_tick = Publisher.PUBLISH_TICK_S * 1000
    assert publisher.wakeups <= publisher.broadcaster.hub.last_seq / (per_tick - 1) + 5


async def test_a_sparse_schedule_keeps_every_message_on_its_own_time() -> None:
    broadcaster = Broadcaster(Hub())
    stamps: list[float] = []
    broadcaster.add_listener(lambda env: stamps.append(env.t))
    publisher = Publisher(broadcaster, rate=100)  # 10 ms apart: more than a tick
    gap_ms, paired_ms = 10.0, Publisher.PUBLISH_TICK_S * 1000 - 1
    loop = asyncio.get_running_loop()
    owed_late = [0]

    async def probe() -> None:
        """The same loop's own lateness, measured alongside: a wake-up late by the gap less a
        tick is one in which the publisher, woken as late, owed two messages; one late by a
        stall of many gaps (the process descheduled) owed one more message per gap. The probe
        sleeps through part of a stall before its own deadline, so each counts one gap more."""
        while True:
            before = loop.time()
            await asyncio.sleep(gap_ms / 1000)
            late_ms = (loop.time() - before) * 1000 - gap_ms
            if late_ms >= gap_ms - paired_ms:
                owed_late[0] += 2 + int(late_ms // gap_ms)

    publisher.start()
    prober = asyncio.create_task(probe())
    try:
        await wait_until(lambda: len(stamps) >= 20, what="20 published")
    finally:
        prober.cancel()
        await asyncio.gather(prober, return_exceptions=True)
        await publisher.stop()
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    # One per wake-up; only a late wake-up may pair two: two on a quiet machine, plus what the
    # loop's own late wake-ups, measured in the same run, owed.
    assert sum(gap < paired_ms for gap in gaps) <= 2 + owed_late[0], (gaps, owed_late)


async def test_publisher_slip_is_measured_when_the_loop_is_blocked() -> None:
    publisher = Publisher(Broadcaster(Hub()), rate=100)
    publisher.start()
    try:
        hub = publisher.broadcaster.hub
        await wait_until(lambda: hub.last_seq >= 2, what="publishing")
        time.sleep(0.12)  # the overload under test: this loop does nothing for 120 ms
        seen = hub.last_seq
        await wait_until(lambda: hub.last_seq > seen, what="the late wake-up")
    finally:
        await publisher.stop()
    assert publisher.slip.max_ms >= 100
    assert publisher.slip.overloaded(asyncio.get_running_loop().time())


# --- the server's figures over the control API, and the session's report ----------------------


async def test_control_status_carries_the_servers_health(server: Server) -> None:
    server.monitor.meter.record(80.0, server.monitor.clock())  # as the probe records a stall
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.control_url}/status") as response:
            body = await response.json()
    health = SideHealth.from_json(body["health"])
    # The recorded stall shows (a busy machine's real probe may add a longer one of its own).
    assert health.overloaded and health.loop_lag_ms["max"] >= 80.0


async def test_report_has_health_and_a_blocked_loop_counts_as_overloaded() -> None:
    # The local server shares the test's loop, so one block overloads both sides; the server's
    # figures still reach the session only through its control API's publisher events.
    session = LocalSession(SessionConfig(transports=["ws"], client_options=fast_client_options()))
    async with session:
        await session.set_rate(100)
        await wait_until(lambda: session.monitor.meter.summary()["max"] is not None, what="a loop sample")
        time.sleep(0.15)  # overload this loop for longer than the threshold
        await wait_until(lambda: session.overloaded_sides() == ["server", "client"], what="both sides flagged")
        report = session.report()
    health = report["health"]
    assert set(health) >= {"server_loop_lag_ms", "client_loop_lag_ms", "publisher_slip_ms_max", "overloaded_s"}
    assert set(health["client_loop_lag_ms"]) == {"p50", "p99", "max"}
    assert health["client_loop_lag_ms"]["max"] > OVERLOAD_MS and health["overloaded_s"] > 0
    assert overload_warning(health) is not None


# --- a client cut for being too slow is labelled as that ---------------------------------------


@pytest.mark.parametrize("transport", ["sse", "ws", "wt", "rtc"])
async def test_a_client_too_slow_for_the_rate_is_labelled_not_taken_for_a_crash(transport: str) -> None:
    config = SessionConfig(transports=[transport], client_options=fast_client_options())
    session = LocalSession(config, fast_server_config(queue_size=4))
    async with session:
        broadcaster = session.local.broadcaster
        await wait_until(lambda: broadcaster.subscriber_count >= 1, what="a live subscription")
        # One synchronous burst: the sender cannot drain the queue meanwhile. An idle SSE or
        # WebSocket stream takes each envelope straight from the publisher, so a stall holds it
        # up first, as a peer that stopped reading would.
        faults = session.local.ctx.faults
        stall = faults.add(Kind.STALL, transport, now=session.local.ctx.clock()) if transport in ("sse", "ws") else None
        for _ in range(10):
            broadcaster.publish()
        if stall is not None:
            faults.clear(stall.id)
        client = session.clients[transport]
        await wait_until(lambda: client.cut_too_slow >= 1, what="the too-slow cut reaching the client")
        report = session.report()
    assert report["transports"][transport]["cut_too_slow"] >= 1
