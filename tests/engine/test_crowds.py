"""Crowd accounting (pure) and a small real crowd against the built-in server."""

from __future__ import annotations

import asyncio

import pytest

from rtplay.clients import Endpoints
from rtplay.clients.poll import PollClient
from rtplay.clients.ws import OPEN_TIMEOUT_S
from rtplay.engine.crowd_slice import CROWD_DEFAULTS, SliceConfig, StartGate, make_clients
from rtplay.engine.session import Session, SessionConfig
from rtplay.model.crowd import CrowdRecorder, CrowdStats, final_figures, merge_finals, percentile
from rtplay.model.events import Connected, Connecting, Disconnected, RetryScheduled
from rtplay.protocol.load import BIN_S
from rtplay.protocol.options import ServerOptions
from tests.conftest import loop_lag_s


def feed(recorder: CrowdRecorder, i: int, *events: object) -> None:
    for event in events:
        recorder.on_event(i, event)  # type: ignore[arg-type]


def herd(recorder: CrowdRecorder, retry_at: list[float]) -> None:
    """Every client connects at 0, drops at 1, retries (refused) at retry_at[i], is back at +0.5."""
    for i, t in enumerate(retry_at):
        feed(recorder, i, Connecting("ws", 0.0, 1), Connected("ws", 0.01), Disconnected("ws", 1.0, "lost"),
             RetryScheduled("ws", 1.0, t - 1.0, "p"), Connecting("ws", t, 2), Disconnected("ws", t, "refused"),
             Connecting("ws", t + 0.5, 3), Connected("ws", t + 0.5))


def stats_of(recorder: CrowdRecorder, workers: int = 1) -> CrowdStats:
    stats = CrowdStats(recorder.count)
    stats.merge(0, recorder.drain(), now=10.0)
    return stats


def test_a_synchronized_crowd_peaks_in_one_bin_and_a_spread_one_does_not() -> None:
    together, spread = CrowdRecorder(100), CrowdRecorder(100)
    herd(together, [2.0] * 100)
    herd(spread, [2.0 + i * 0.02 for i in range(100)])  # 2 s wide: five per 100 ms bin
    a, b = stats_of(together).report(since=0.5), stats_of(spread).report(since=0.5)
    assert a["peak_attempts_per_s"] == 100 / BIN_S
    assert b["peak_attempts_per_s"] <= 12 / BIN_S  # five first and five second tries a bin
    assert a["total_attempts"] == b["total_attempts"] == 200  # the first connects are set-up
    assert a["time_to_all_reconnected_s"] == pytest.approx(1.5)
    assert b["time_to_all_reconnected_s"] == pytest.approx(1.5 + 99 * 0.02)
    assert a["reconnect_delay_ms"] == {"p50": pytest.approx(1500), "p99": pytest.approx(1500)}
    assert a["states"]["open"] == 100


def test_a_crowd_not_all_back_has_no_reconnect_time() -> None:
    recorder = CrowdRecorder(2)
    feed(recorder, 0, Connecting("ws", 0, 1), Connected("ws", 0.1))
    feed(recorder, 1, Connecting("ws", 0, 1), Connected("ws", 0.1), Disconnected("ws", 1.0, "lost"))
    report = stats_of(recorder).report()
    assert report["time_to_all_reconnected_s"] is None
    assert report["states"]["connecting"] == 0 and report["states"]["open"] == 1


def test_deltas_from_several_workers_merge() -> None:
    one, two = CrowdRecorder(50), CrowdRecorder(50)
    herd(one, [2.0] * 50)
    herd(two, [2.05] * 50)
    stats = CrowdStats(100)
    stats.merge(0, one.drain(), 1.0)
    stats.merge(1, two.drain(), 1.0)
    assert stats.report(since=0.5)["peak_attempts_per_s"] == 100 / BIN_S
    assert stats.states()["open"] == 100
    assert one.drain()["attempts"] == []  # a drain hands over each event once


def test_each_retry_attempt_reports_how_late_it_started_against_its_policy() -> None:
    recorder = CrowdRecorder(3)
    for i, late in enumerate([0.0, 0.4, 0.9]):  # each due at 3.0 (dropped at 1, policy says 2 s)
        feed(recorder, i, Connecting("ws", 0.0, 1), Connected("ws", 0.01), Disconnected("ws", 1.0, "lost"),
             RetryScheduled("ws", 1.0, 2.0, "exp none 2s"), Connecting("ws", 3.0 + late, 2), Connected("ws", 3.5 + late))
    feed(recorder, 0, Disconnected("ws", 5.0, "lost"), Connecting("ws", 5.0, 3))  # no retry scheduled: no lag
    report = stats_of(recorder).report(since=0.5)
    assert report["attempt_lag_ms"] == {"p50": pytest.approx(400), "p99": pytest.approx(900), "max": pytest.approx(900)}
    assert report["total_attempts"] == 4
    assert stats_of(CrowdRecorder(1)).report()["attempt_lag_ms"] == {"p50": None, "p99": None, "max": None}
    # Lags count from ``since``, like the attempts: the set-up's are not the run's.
    late = CrowdRecorder(1)
    feed(late, 0, Connecting("ws", 0.0, 1), Disconnected("ws", 0.1, "refused"), RetryScheduled("ws", 0.1, 0.1, "p"),
         Connecting("ws", 1.2, 2))
    merged = stats_of(late)
    assert merged.report(since=2.0)["attempt_lag_ms"]["max"] is None
    assert merged.report()["attempt_lag_ms"]["max"] == pytest.approx(1000)


def test_tries_of_a_client_never_in_are_set_up_not_reconnect_attempts_of_the_run() -> None:
    recorder = CrowdRecorder(3)
    herd(recorder, [2.0, 2.0])  # two clients in at 0, back through a drop
    for k in range(5):  # the third never got in before the run started (at 0.5): its tries are set-up
        feed(recorder, 2, Connecting("ws", 1.0 + k * 0.01, k + 1), Disconnected("ws", 1.0 + k * 0.01, "refused"),
             RetryScheduled("ws", 1.0 + k * 0.01, 0.0, "p"))
    stats = stats_of(recorder)
    report = stats.report(since=0.5)
    assert report["total_attempts"] == 4 and report["setup_attempts"] == 5
    assert report["peak_attempts_per_s"] == 2 / BIN_S  # the herd's bin, not the late set-up's five
    assert stats.rate_series("attempts", 1.0, 1.0) == [5 / BIN_S]  # the pane still shows every try


def test_delivery_figures_merge_across_workers() -> None:
    a = final_figures(
        [{"delivered": 10, "lost": 0, "pending": 0, "lost_to_reset": 0}, {"delivered": 8, "lost": 2, "pending": 0, "lost_to_reset": 1}],
        "p",
    )
    b = final_figures([{"delivered": 9, "lost": 1, "pending": 0, "lost_to_reset": 0}], "p")
    merged = merge_finals([a | {"cpu_s": 1.0, "max_rss_kb": 100, "clients": 2}, b | {"cpu_s": 0.5, "max_rss_kb": 50, "clients": 1}])
    assert merged == {
        "delivered_min": 8, "lost_total": 3, "lost_to_reset_total": 1, "policy": "p",
        "worker_cpu_s": 1.5, "worker_rss_kb_per_client": 50.0, "pending_total": 0,
    }
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0 and percentile([], 99) is None


@pytest.mark.long
async def test_a_real_crowd_reconnects_after_a_drop_and_loses_nothing() -> None:
    config = SessionConfig(
        transports=["ws"], server=ServerOptions(rate=20), crowd=20,
        client_options={"ws": {"retry": "exponential:jitter=full,base=0.2,cap=0.4"}},
    )
    async with Session(config) as session:
        crowd = session.crowds["ws"]
        assert crowd.stats.states()["open"] == 20 or session.server.ctx.registry.count("ws") >= 20
        await asyncio.sleep(0.3)
        await session.drop("ws")
        async with asyncio.timeout(10):
            while crowd.stats.time_to_all_reconnected() is None:
                await asyncio.sleep(0.05)
        assert await session.settle(10)
        await session.finish_crowds()
        report = session.report()
        lag = loop_lag_s(session)
    entry = report["transports"]["ws"]["crowd"]
    assert entry["clients"] == 20 and entry["lost_total"] == 0 and entry["delivered_min"] == report["published"]
    # Retries of at most 0.2 s then 0.4 s: all back within 2 s, plus this run's worst loop lag.
    assert entry["total_attempts"] >= 20 and entry["time_to_all_reconnected_s"] < 2 + lag, (entry, lag)
    assert entry["policy"] == "exp full 0.2s×2≤0.4s"
    assert report["server_load"]["peak_concurrent"] >= 21


async def test_a_poll_crowd_connects_and_receives_every_message() -> None:
    config = SessionConfig(
        transports=["poll"], server=ServerOptions(rate=20), crowd=10, crowd_workers=1,
        client_options={"poll": {"interval": 0.2}},
    )
    async with Session(config) as session:
        crowd = session.crowds["poll"]
        assert [s.state for s in crowd.slices] == ["running"]
        async with asyncio.timeout(10):
            while crowd.stats.states()["open"] < 10 or session.published < 10:
                await asyncio.sleep(0.05)
        assert await session.settle(10)
        await session.finish_crowds()
        report = session.report()
    entry = report["transports"]["poll"]["crowd"]
    assert entry["clients"] == 10 and entry["lost_total"] == 0 and entry["pending_total"] == 0
    assert entry["delivered_min"] == report["published"] >= 10
    assert entry["states"]["open"] == 10


def test_poll_crowd_clients_take_their_interval_and_no_retry_policy() -> None:
    endpoints = Endpoints("http://127.0.0.1:1")
    clients = make_clients(SliceConfig("poll", 3, 0, 0, None, endpoints, {"interval": 0.5}), CrowdRecorder(3).emit_for)
    assert [type(c) for c in clients] == [PollClient] * 3 and all(c.interval == 0.5 for c in clients)
    with pytest.raises(ValueError, match="poll clients take no retry policy"):
        make_clients(SliceConfig("poll", 3, 0, 0, "fixed:1", endpoints), CrowdRecorder(3).emit_for)


async def test_the_start_gate_lets_a_client_in_only_when_a_first_attempt_ends() -> None:
    gate = StartGate(2)
    await gate.enter(0)
    await gate.enter(1)
    third, fourth = asyncio.create_task(gate.enter(2)), asyncio.create_task(gate.enter(3))
    try:
        await asyncio.sleep(0)
        gate.on_event(0, Connecting("ws", 0.0, 1))  # still connecting: no place given back
        gate.on_event(5, Disconnected("ws", 0.0, "refused"))  # a client that holds no place
        await asyncio.sleep(0)
        assert not third.done()
        gate.on_event(0, Connected("ws", 0.1))  # client 0 is open: its place goes to client 2
        await asyncio.wait_for(third, 1)
        gate.on_event(0, Disconnected("ws", 1.0, "lost"))  # its later attempts hold no place
        await asyncio.sleep(0)
        assert not fourth.done()
        gate.on_event(1, Disconnected("ws", 0.2, "refused"))  # a first attempt refused ends too
        await asyncio.wait_for(fourth, 1)
    finally:
        third.cancel()
        fourth.cancel()


def test_crowd_ws_clients_wait_longer_for_a_handshake_unless_the_run_says() -> None:
    endpoints = Endpoints("http://127.0.0.1:1")
    default = make_clients(SliceConfig("ws", 1, 0, 0, None, endpoints), CrowdRecorder(1).emit_for)
    chosen = make_clients(SliceConfig("ws", 1, 0, 0, None, endpoints, {"open_timeout": 3.0}), CrowdRecorder(1).emit_for)
    assert [c.open_timeout for c in default + chosen] == [CROWD_DEFAULTS["ws"]["open_timeout"], 3.0]
    assert CROWD_DEFAULTS["ws"]["open_timeout"] > OPEN_TIMEOUT_S  # the pane's client keeps its own
