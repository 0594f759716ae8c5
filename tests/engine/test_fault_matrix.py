"""What a user should see for each fault on the HTTP transports (real sockets, short timers)."""

from __future__ import annotations

import asyncio
import time

import pytest

from rtplay.engine.session import Session, SessionConfig
from rtplay.model.events import Event, MessageReceived, RetryScheduled, State
from rtplay.protocol.faults import Kind
from tests.conftest import LocalSession, fast_client_options, fast_server_config, stalls, wait_until

RESUMABLE = ["longpoll", "sse", "ws"]


def session_for(transports: list[str], *, emit_messages: bool = False, **server: object) -> LocalSession:
    return LocalSession(
        SessionConfig(transports=transports, client_options=fast_client_options(), emit_messages=emit_messages),
        fast_server_config(**server),
    )


def delivered(session: Session, name: str) -> int:
    return session.clients[name].stats["main"].tracker.delivered


async def all_have(session: Session, names: list[str], n: int) -> None:
    await wait_until(lambda: all(delivered(session, t) >= n for t in names), what=f"{n} messages on {names}")


def assert_nothing_lost(report: dict, names: list[str]) -> None:
    for name in names:
        entry = report["transports"][name]
        assert (entry["lost"], entry["duplicates"], entry["lost_to_reset"]) == (0, 0, 0), (name, entry)
        assert entry["delivered"] == report["published"], name


async def test_drop_resumables_recover_with_nothing_lost_and_figures_recorded() -> None:
    async with stalls() as meter, session_for(RESUMABLE) as session:
        await session.set_rate(200)
        await all_have(session, RESUMABLE, 50)
        added = session.clock()
        await session.faults.add(Kind.DROP)
        await wait_until(lambda: all(session.clients[t].conn.reconnects >= 1 for t in ("sse", "ws")), what="reconnects")
        await all_have(session, RESUMABLE, 150)
        assert await session.settle(3)
        report = session.report()
    assert_nothing_lost(report, RESUMABLE)
    figures = {f["transport"]: f for f in report["faults"]}
    assert set(figures) == set(RESUMABLE)
    for name in ("sse", "ws"):
        # Noticed by the closed connection, not a heartbeat (ws's takes a second): within
        # 0.5 s of the drop, plus what this loop (server and clients) lost to stalls meanwhile.
        detect = figures[name]["time_to_detect_s"]
        assert detect is not None, name
        lost = meter.within(added, added + detect)
        assert detect - lost < 0.5, (name, detect, lost)
        assert figures[name]["time_to_recover_s"] is not None and figures[name]["replayed"] > 0


async def test_stall_is_detected_by_the_ws_heartbeat_but_not_by_sse() -> None:
    async with stalls() as meter, session_for(["sse", "ws"]) as session:
        await session.set_rate(50)
        await all_have(session, ["sse", "ws"], 10)
        fault = await session.faults.add(Kind.STALL)
        started = session.clock()
        ws = session.clients["ws"]
        await wait_until(lambda: ws.conn.reconnects >= 1 or ws.state is State.RETRYING, what="ws notices the stall")
        # ws pings every 0.5 s with a 0.5 s timeout: it must notice within interval + timeout
        # (+ 0.3 s for the ping that was already due, + what this loop, the server's and the
        # clients', lost to stalls meanwhile).
        now = session.clock()
        detect, lost = now - started, meter.within(started, now)
        assert detect - lost <= 0.5 + 0.5 + 0.3, (detect, lost)
        await asyncio.sleep(0.5)  # keep the stall on a while longer: sse must still not notice
        assert session.clients["sse"].state is State.OPEN and session.clients["sse"].conn.reconnects == 0
        await session.faults.clear(fault.id)
        assert await session.settle(5)
        report = session.report()
    assert_nothing_lost(report, ["sse", "ws"])


async def test_error_503_each_transport_by_its_own_semantics() -> None:
    events: list[Event] = []
    async with session_for(["poll", "longpoll", "sse", "ws"]) as session:
        session.subscribe(events.append)
        await session.set_rate(50)
        await all_have(session, ["longpoll", "sse", "ws"], 5)
        await session.faults.add(Kind.ERROR, "all", 503)
        await session.faults.add(Kind.DROP)  # so the live streams must reconnect into the error
        await wait_until(lambda: session.clients["sse"].state is State.FAILED, what="sse fails")
        await wait_until(
            lambda: sum(isinstance(e, RetryScheduled) and e.transport == "ws" for e in events) >= 3, what="ws backs off"
        )
        await wait_until(
            lambda: sum(isinstance(e, RetryScheduled) and e.transport == "poll" for e in events) >= 3, what="polls"
        )
        await wait_until(
            lambda: any(isinstance(e, RetryScheduled) and e.transport == "longpoll" for e in events), what="longpoll"
        )
    retries = {t: [e for e in events if isinstance(e, RetryScheduled) and e.transport == t] for t in ("poll", "longpoll", "ws")}
    assert all(e.delay_s == 0.1 for e in retries["poll"])  # poll just keeps polling on its interval
    assert retries["longpoll"][0].delay_s == 0.2 and retries["longpoll"][0].policy == "fixed 0.2s"
    assert all(e.policy.startswith("exp") for e in retries["ws"])
    assert session.clients["sse"].state_detail.startswith("HTTP 503")


async def test_crash_resumes_are_counted_as_resets() -> None:
    async with session_for(RESUMABLE) as session:
        await session.set_rate(100)
        await all_have(session, RESUMABLE, 20)
        await session.faults.add(Kind.CRASH, "all", 0.5)
        await wait_until(
            lambda: all(session.clients[t].stats["main"].tracker.lost_to_reset > 0 for t in RESUMABLE),
            what="a reset on every resumable transport",
        )
        assert await session.settle(3)
        report = session.report()
    for name in RESUMABLE:
        entry = report["transports"][name]
        assert entry["lost"] == 0 and entry["lost_to_reset"] > 0, name
        assert entry["delivered"] + entry["lost_to_reset"] == report["published"], name


async def test_outage_then_every_transport_replays_what_it_missed() -> None:
    async with session_for(["poll", *RESUMABLE]) as session:
        await session.set_rate(100)
        await all_have(session, RESUMABLE, 20)
        await session.faults.add(Kind.OUTAGE, "all", 0.6)
        await wait_until(lambda: not session.local.http_running, what="listeners down")
        await wait_until(lambda: session.local.http_running, what="listeners back")
        assert await session.settle(5)
        report = session.report()
    assert_nothing_lost(report, ["poll", *RESUMABLE])
    assert all(report["transports"][t]["reconnects"] >= 1 for t in ("poll", "sse", "ws"))


async def test_delay_adds_the_delay_to_every_message_within_jitter_plus_10ms() -> None:
    """Each path's own latency is measured first (no fault), then with the fault, in the same
    run: the fault adds its 200 ± 20 ms and nothing else, whatever the machine's load. Server
    and clients share this test's loop: what a message's flight lost to that loop's stalls
    (:class:`Stalls`) is taken off its latency, before and during the fault alike."""
    before: dict[str, list[float]] = {t: [] for t in RESUMABLE}
    held: dict[str, list[float]] = {t: [] for t in RESUMABLE}
    hold_s = 0.2 - 0.02  # the earliest a held message is released

    def record(event: Event) -> None:
        if isinstance(event, MessageReceived):
            sent = event.at - event.latency_ms / 1000
            if event.at < fault_from[0]:
                before[event.transport].append(event.latency_ms - 1000 * meter.within(sent, event.at))
            elif event.at > fault_from[0] + 0.5:  # messages published before it may be in flight
                # Stalls while it was held do not delay its release; from then on they do.
                lost = meter.within(sent + hold_s, event.at)
                held[event.transport].append(event.latency_ms - 1000 * lost)
                raw[event.transport].append(event.latency_ms)

    fault_from = [float("inf")]
    raw: dict[str, list[float]] = {t: [] for t in RESUMABLE}
    async with stalls() as meter, session_for(RESUMABLE, emit_messages=True) as session:
        session.subscribe(record)
        await session.set_rate(50)
        await all_have(session, RESUMABLE, 5)
        await wait_until(lambda: all(len(v) >= 30 for v in before.values()), what="30 messages each")
        fault_from[0] = session.clock()
        await session.faults.add(Kind.DELAY, "all", 200, jitter=20)
        await wait_until(lambda: all(len(v) >= 30 for v in held.values()), what="30 delayed messages each")
    for name, values in held.items():
        base = max(before[name][-30:])
        # The server holds each message 200 ± 20 ms and never releases one early (the raw
        # latency: a stall can only make it later).
        assert 200 - 20 - 10 <= min(raw[name]), (name, min(raw[name]))
        if name != "longpoll":
            # Late by no more than the jitter and the path's own latency in this run (its
            # worst), each net of the stalls of this loop while it was on its way.
            assert max(values) <= 200 + 20 + 10 + base, (name, max(values), base, raw[name])
    # A delayed long-poll answer also carries what was published while it was held: its
    # messages are 200 ms to two holds old, never less.
    base = max(before["longpoll"][-30:])
    assert max(held["longpoll"]) <= 2 * (200 + 20) + 30 + base, (max(held["longpoll"]), base, raw["longpoll"])


async def test_a_cleared_fault_stops_acting_within_100ms() -> None:
    async with stalls() as meter, session_for(["sse", "ws"]) as session:
        await wait_until(lambda: all(c.state is State.OPEN for c in session.clients.values()), what="open")
        fault = await session.faults.add(Kind.DELAY, "all", 5000)
        session.local.broadcaster.publish()
        await asyncio.sleep(0.1)
        assert delivered(session, "sse") == delivered(session, "ws") == 0  # held by the delay
        cleared = time.monotonic()
        await session.faults.clear(fault.id)
        await all_have(session, ["sse", "ws"], 1)
        # The held message goes out at once: within 100 ms, plus what this loop (the server's
        # and both clients') lost to stalls meanwhile.
        now = time.monotonic()
        took, lost = now - cleared, meter.within(cleared, now)
        assert took - lost < 0.1, (took, lost)


async def test_100_fault_toggles_lose_nothing_on_resumable_transports() -> None:
    async with session_for(RESUMABLE) as session:
        await session.set_rate(200)
        await all_have(session, RESUMABLE, 20)
        kinds = [Kind.DROP, Kind.STALL, Kind.DELAY, Kind.THROTTLE]
        for i in range(100):
            kind = kinds[i % len(kinds)]
            value = {Kind.DELAY: 50, Kind.THROTTLE: 20}.get(kind)
            fault = await session.faults.add(kind, RESUMABLE[i % 3], value)
            await asyncio.sleep(0.02)
            await session.faults.clear(fault.id)
        assert await session.settle(10)
        report = session.report()
    assert_nothing_lost(report, RESUMABLE)


async def test_offline_client_ws_notices_by_heartbeat_and_everyone_catches_up() -> None:
    async with session_for(["poll", *RESUMABLE]) as session:
        await session.set_rate(100)
        await all_have(session, RESUMABLE, 10)
        fault = await session.faults.add(Kind.OFFLINE)
        await wait_until(lambda: session.clients["ws"].state is State.RETRYING, what="ws notices offline")
        await wait_until(lambda: session.clients["poll"].state is State.RETRYING, what="poll fails")
        await session.faults.clear(fault.id)
        assert await session.settle(5)
        report = session.report()
    assert_nothing_lost(report, ["poll", *RESUMABLE])


@pytest.mark.parametrize("transport", ["sse", "ws", "longpoll"])
async def test_throttle_slows_delivery_to_the_byte_rate(transport: str) -> None:
    async with session_for([transport]) as session:
        await wait_until(lambda: session.clients[transport].state is State.OPEN, what="open")
        await session.faults.add(Kind.THROTTLE, transport, 2)  # 2 KB/s, ~100 bytes a message → ~20 msg/s
        start = session.clock()
        # 60 messages at once, not a rate: a long-poll answer carries everything published
        # while the one before crawled through the throttle, so at a rate the bytes to move
        # (and the time) grew with how slow the machine was; 60 messages are ~6 KB, ~3 s.
        for _ in range(60):
            session.local.broadcaster.publish()
        await all_have(session, [transport], 60)
        elapsed = session.clock() - start
    # ~100 bytes a message: ~6 KB, less the throttle's 1.5 KB burst, at 2 KB/s is over 2 s (the
    # bound leaves room for ws's smaller frames); unthrottled, 60 messages take milliseconds.
    assert elapsed >= 1.0, elapsed
