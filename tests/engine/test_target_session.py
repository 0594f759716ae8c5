"""Target mode against the example servers (which share no code with rtplay's server)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from rtplay.engine.target_session import TargetConfig, TargetSession
from rtplay.model.faultspec import parse_fault
from rtplay.model.identity import Identified, Identity, parse_resume, parse_seq, parse_time
from tests.engine.examples import example

#: Publish fast so a test sees dozens of messages in a second.
RATE = "100"


class Arrivals:
    """Every readable message a tap received, and a way to wait for more."""

    def __init__(self) -> None:
        self.seen: list[tuple[Identified, float]] = []
        self._more = asyncio.Event()

    def __call__(self, message: Identified, received_ms: float) -> None:
        self.seen.append((message, received_ms))
        self._more.set()

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(10):
            while not done():
                self._more.clear()
                await self._more.wait()


async def run(url: str, transport: str, identity: Identity) -> tuple[TargetSession, Arrivals]:
    session = TargetSession(TargetConfig({transport: url}, {transport: identity}))
    await session.start()
    arrivals = Arrivals()
    session.taps[transport].arrival_hook = arrivals
    return session, arrivals


async def drop_and_recover(session: TargetSession, transport: str, arrivals: Arrivals) -> None:
    await arrivals.until(lambda: len(arrivals.seen) >= 20)
    session.apply(parse_fault("drop"))
    tap = session.taps[transport]
    await arrivals.until(lambda: bool(tap.verdicts) and len(arrivals.seen) >= 40)


async def test_sse_with_last_event_id_honoured_loses_nothing_and_latency_matches_the_stamps(tmp_path: Path) -> None:
    with example("sse_server.py", tmp_path, "--rate", RATE) as server:
        identity = Identity(parse_seq("sse-id"), parse_time("json:sent_ms"))
        session, arrivals = await run(server.url, "sse", identity)
        try:
            await drop_and_recover(session, "sse", arrivals)
            report = session.report()
        finally:
            await session.stop()
        stamps = server.published()
    entry = report["transports"]["sse"]
    assert entry["reconnects"] == 1
    assert (entry["lost"], entry["duplicates"]) == (0, 0)
    assert entry["resumption"][0]["outcome"] == "resumed"
    assert "Last-Event-ID" in entry["resumption"][0]["words"]
    assert report["faults"][0]["transports"]["sse"]["lost"] == 0
    for message, received_ms in arrivals.seen:  # --time reads the example's own send stamps
        assert message.seq is not None and message.sent_ms is not None
        assert abs(message.sent_ms - stamps[message.seq]) < 1.0
        assert received_ms - message.sent_ms >= -1.0  # same host, same clock


async def test_ws_without_a_cursor_loses_exactly_what_was_published_while_away(tmp_path: Path) -> None:
    with example("ws_server.py", tmp_path, "--rate", RATE) as server:
        session, arrivals = await run(server.url, "ws", Identity(parse_seq("json:seq"), parse_time("json:sent_ms")))
        try:
            await drop_and_recover(session, "ws", arrivals)
            report = session.report()
        finally:
            await session.stop()
        stamps = server.published()
    entry = report["transports"]["ws"]
    received = {m.seq for m, _ in arrivals.seen}
    published_meanwhile = {s for s in stamps if min(received) <= s <= max(received)} - received  # type: ignore[type-var, operator]
    assert entry["lost"] == len(published_meanwhile) > 0
    assert entry["resumption"][0]["outcome"] == "skipped"
    assert f"{len(published_meanwhile)} lost" in entry["resumption"][0]["words"]


async def test_ws_with_a_resume_cursor_loses_nothing(tmp_path: Path) -> None:
    with example("ws_server.py", tmp_path, "--rate", RATE, "--resume") as server:
        identity = Identity(parse_seq("json:seq"), resume=parse_resume("?since={seq}"))
        session, arrivals = await run(server.url, "ws", identity)
        try:
            await drop_and_recover(session, "ws", arrivals)
            report = session.report()
        finally:
            await session.stop()
    entry = report["transports"]["ws"]
    assert (entry["lost"], entry["duplicates"]) == (0, 0)
    assert entry["resumption"][0]["words"].startswith("resumed from the asked id (since=")


@pytest.mark.parametrize("transport", ["poll", "longpoll"])
async def test_polling_clients_resume_with_the_template(tmp_path: Path, transport: str) -> None:
    from aiohttp import web

    published = list(range(1, 31))

    async def batch(request: web.Request) -> web.Response:
        since = int(request.query.get("since", "0"))
        return web.json_response([{"id": s} for s in published if s > since][:10])

    app = web.Application()
    app.router.add_get("/updates", batch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/updates"
    options = {"interval": 0.05} if transport == "poll" else {}
    identity = Identity(parse_seq("json:id"), resume=parse_resume("?since={seq}"))
    session = TargetSession(TargetConfig({transport: url}, {transport: identity}, {transport: options}))
    await session.start()
    arrivals = Arrivals()
    session.taps[transport].arrival_hook = arrivals
    try:
        await arrivals.until(lambda: len(arrivals.seen) >= 30)
        report = session.report()
    finally:
        await session.stop()
        await runner.cleanup()
    entry = report["transports"][transport]
    assert (entry["delivered"], entry["lost"], entry["duplicates"]) == (30, 0, 0)


async def test_through_the_proxy_a_drop_is_the_servers_and_a_delay_shows_in_latency(tmp_path: Path) -> None:
    with example("sse_server.py", tmp_path, "--rate", RATE) as server:
        identity = Identity(parse_seq("sse-id"), parse_time("json:sent_ms"))
        session = TargetSession(TargetConfig({"sse": server.url}, {"sse": identity}, direct=False))
        await session.start()
        arrivals = Arrivals()
        tap = session.taps["sse"]
        tap.arrival_hook = arrivals
        try:
            assert tap.target_url.startswith(session.proxies["sse"].url)
            await drop_and_recover(session, "sse", arrivals)
            applied_ms = time.time() * 1000
            session.apply(parse_fault("delay=200ms"))
            delayed_from = len(arrivals.seen)
            await arrivals.until(lambda: len(arrivals.seen) >= delayed_from + 30)
            report = session.report()
        finally:
            await session.stop()
    entry = report["transports"]["sse"]
    assert entry["via"].startswith("http://127.0.0.1:") and entry["url"] == server.url
    assert (entry["lost"], entry["duplicates"]) == (0, 0)
    assert entry["resumption"][0]["outcome"] == "resumed"
    assert [f["side"] for f in report["faults"]] == ["proxy", "proxy"]
    # Every message published once the delay was on took at least the delay (the backlog
    # replayed just before arrives undelayed).
    late = [received - m.sent_ms for m, received in arrivals.seen[delayed_from:]
            if m.sent_ms is not None and m.sent_ms > applied_ms]
    assert late and min(late) >= 199


async def test_a_crowd_of_target_clients_reports_each_reconnect_outcome(tmp_path: Path) -> None:
    with example("sse_server.py", tmp_path, "--rate", RATE) as server:
        config = TargetConfig({"sse": server.url}, {"sse": Identity(parse_seq("sse-id"))}, crowd=3, direct=True)
        session = TargetSession(config)
        await session.start()
        arrivals = Arrivals()
        session.taps["sse"].arrival_hook = arrivals
        try:
            await arrivals.until(lambda: len(arrivals.seen) >= 20)
            session.apply(parse_fault("drop"))
            crowd = session.crowd_taps["sse"]
            await arrivals.until(lambda: all(tap.verdicts for tap in crowd) and bool(session.taps["sse"].verdicts))
            report = session.report()
        finally:
            await session.stop()
    crowd_figures = report["transports"]["sse"]["crowd"]
    assert crowd_figures["clients"] == 3
    assert crowd_figures["reconnect_outcomes"] == {"resumed": 3}
    assert (crowd_figures["lost"], crowd_figures["duplicates"]) == (0, 0)
