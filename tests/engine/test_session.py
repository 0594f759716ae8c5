"""The four HTTP transports end to end through the Session engine, over 127.0.0.1."""

from __future__ import annotations

import asyncio

from aiohttp import web

from rtplay.clients.sse import SSEClient
from rtplay.engine.session import Session, SessionConfig
from rtplay.model.events import Connected, Event, Failed, RetryScheduled, State
from rtplay.protocol.faults import Kind
from servers.runner import ServerConfig
from tests.conftest import LocalSession, fast_client_options, fast_server_config, wait_until

HTTP_TRANSPORTS = ["poll", "longpoll", "sse", "ws"]


def make_session(transports: list[str] = HTTP_TRANSPORTS, server: ServerConfig | None = None) -> LocalSession:
    return LocalSession(
        SessionConfig(transports=transports, client_options=fast_client_options()), server or fast_server_config()
    )


def delivered(session: Session, name: str) -> int:
    return session.clients[name].stats["main"].tracker.delivered


async def test_every_transport_delivers_in_order_with_no_loss() -> None:
    async with make_session() as session:
        await session.set_rate(200)
        await wait_until(lambda: all(delivered(session, t) >= 100 for t in HTTP_TRANSPORTS), what="100 each")
        assert await session.settle(3)
        report = session.report()
    assert report["published"] >= 100
    for name in HTTP_TRANSPORTS:
        entry = report["transports"][name]
        assert entry["delivered"] == report["published"], name
        assert (entry["lost"], entry["duplicates"], entry["out_of_order"]) == (0, 0, 0), name
        assert entry["latency_ms"]["p50"] is not None


async def test_after_server_drops_every_connection_resumables_lose_nothing() -> None:
    events: list[Event] = []
    async with make_session(["longpoll", "sse", "ws"]) as session:
        session.subscribe(events.append)
        await session.set_rate(200)
        await wait_until(lambda: all(delivered(session, t) >= 50 for t in ("longpoll", "sse", "ws")), what="50 each")
        assert (await session.drop()) >= 2  # longpoll may be between requests
        await wait_until(
            lambda: all(session.clients[t].conn.reconnects >= 1 for t in ("sse", "ws")), what="sse and ws reconnect"
        )
        await wait_until(lambda: all(delivered(session, t) >= 150 for t in ("longpoll", "sse", "ws")), what="more")
        assert await session.settle(3)
        report = session.report()
    for name in ("longpoll", "sse", "ws"):
        entry = report["transports"][name]
        assert (entry["delivered"], entry["lost"], entry["duplicates"]) == (report["published"], 0, 0), name
    # SSE reconnected with Last-Event-ID after the server's retry: field
    sse_connects = [e for e in events if isinstance(e, Connected) and e.transport == "sse"]
    assert sse_connects[-1].detail.startswith("Last-Event-ID: ") and "(none)" not in sse_connects[-1].detail
    sse_retries = [e for e in events if isinstance(e, RetryScheduled) and e.transport == "sse"]
    assert sse_retries and sse_retries[0].delay_s == 0.1 and sse_retries[0].policy == "eventsource, the stream's retry:"


async def test_resume_older_than_the_buffer_is_a_counted_reset() -> None:
    server = fast_server_config(replay_capacity=20)
    async with make_session(["sse", "ws", "longpoll"], server=server) as session:
        await session.set_rate(200)
        await wait_until(lambda: all(delivered(session, t) >= 10 for t in ("sse", "ws", "longpoll")), what="10 each")
        await session.local.stop_http()  # an outage long enough to overrun the 20-message buffer
        start = session.published
        await wait_until(lambda: session.published >= start + 60, what="60 published during the outage")
        await session.local.start_http()
        await wait_until(
            lambda: all(session.clients[t].stats["main"].tracker.lost_to_reset > 0 for t in ("sse", "ws", "longpoll")),
            what="a reset on every transport",
        )
        assert await session.settle(5)
        report = session.report()
    for name in ("sse", "ws", "longpoll"):
        entry = report["transports"][name]
        assert entry["lost"] == 0, name
        assert entry["delivered"] + entry["lost_to_reset"] == report["published"], name


async def test_sse_fails_for_good_on_204_and_503() -> None:
    for code in (204, 503):
        events: list[Event] = []
        session = make_session(["sse"])
        session.subscribe(events.append)
        session.local.faults.add(Kind.ERROR, "sse", code, now=0)
        async with session:
            await wait_until(lambda s=session: s.clients["sse"].state is State.FAILED, what=f"sse failed on {code}")
            assert session.clients["sse"].attempts == 1
        failed = [e for e in events if isinstance(e, Failed)]
        assert len(failed) == 1 and f"HTTP {code}" in failed[0].reason
        assert not [e for e in events if isinstance(e, RetryScheduled)]


async def test_sse_fails_on_wrong_content_type() -> None:
    async def plain(request: web.Request) -> web.Response:
        return web.Response(text="data: x\n\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/sse", plain)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    events: list[Event] = []
    client = SSEClient(f"http://127.0.0.1:{runner.addresses[0][1]}", events.append)
    try:
        await asyncio.wait_for(client.run(), 5)  # returns: a failed EventSource never reconnects
    finally:
        await runner.cleanup()
    assert client.state is State.FAILED
    assert "wrong Content-Type 'text/plain'" in client.state_detail
    assert not [e for e in events if isinstance(e, RetryScheduled)]


async def test_poll_keeps_polling_through_an_outage() -> None:
    async with make_session(["poll"]) as session:
        await session.set_rate(50)
        await wait_until(lambda: delivered(session, "poll") >= 10, what="first messages")
        await session.local.stop_http()
        await wait_until(lambda: session.clients["poll"].state is State.RETRYING, what="poll notices")
        await session.local.start_http()
        await wait_until(lambda: session.clients["poll"].state is State.OPEN, what="poll recovers")
        assert await session.settle(3)
        assert session.report()["transports"]["poll"]["lost"] == 0


async def test_a_failed_client_restarts_and_resumes_where_it_was() -> None:
    session = make_session(["sse"])
    async with session:
        await session.set_rate(100)
        await wait_until(lambda: delivered(session, "sse") >= 10, what="first messages")
        error = await session.faults.add(Kind.ERROR, "sse", 503)
        await session.faults.add(Kind.DROP, "sse")
        await wait_until(lambda: session.clients["sse"].state is State.FAILED, what="sse fails")
        await session.faults.clear(error.id)
        assert session.restart_client("sse")
        assert not session.restart_client("sse")  # already running
        await wait_until(lambda: session.clients["sse"].state is State.OPEN, what="sse open again")
        assert await session.settle(3)
        entry = session.report()["transports"]["sse"]
    assert entry["lost"] == 0 and entry["duplicates"] == 0  # resumed with its Last-Event-ID


def test_malformed_frames_are_protocol_errors_not_crashes() -> None:
    import pytest

    from rtplay.protocol.envelope import ProtocolError, decode_json, parse_envelope

    for bad in ("{", "[" * 100_000, '{"seq": "x", "t": 1}', '{"seq": 0, "t": 1}', '{"seq": 3}', "[]"):
        with pytest.raises(ProtocolError):
            parse_envelope(decode_json(bad))
