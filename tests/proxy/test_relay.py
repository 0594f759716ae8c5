"""The proxy relays HTTP, SSE and WebSocket traffic of upstreams it did not write, and its faults
act per event and per message."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rtplay.model.eventsource import EventStreamParser, MessageEvent
from rtplay.proxy.proxy import FaultProxy
from tests.proxy.upstreams import SseApp, sse_upstream, ws_upstream


async def read_events(response: aiohttp.ClientResponse, count: int) -> list[MessageEvent]:
    parser = EventStreamParser()
    events: list[MessageEvent] = []
    async for chunk in response.content.iter_any():
        events += parser.feed(chunk)
        if len(events) >= count:
            return events
    return events


@pytest.fixture
async def sse() -> AsyncIterator[tuple[FaultProxy, SseApp]]:
    async with sse_upstream() as (url, app):
        proxy = FaultProxy("sse", url, seed=1)
        await proxy.start()
        try:
            yield proxy, app
        finally:
            await proxy.stop()


async def test_a_request_passes_through_and_is_seen(sse: tuple[FaultProxy, SseApp]) -> None:
    proxy, _ = sse
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/hello?since=7") as response:
            assert response.status == 200
            assert await response.text() == "hello 7"
        async with http.post(proxy.url + "/echo", data=b"x" * 5000) as response:
            assert await response.read() == b"x" * 5000
    wire = proxy.wire_json()
    route = next(r for r in wire["routes"] if r["path"] == "/hello")
    assert route["kind"] == "http" and route["connections"] == 1
    assert wire["clients"][0]["decisions"][0]["resume_from"] == "7"


async def test_sse_events_pass_unchanged_and_the_proxy_learns_ids_and_retry(sse: tuple[FaultProxy, SseApp]) -> None:
    proxy, app = sse
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events", headers={"Last-Event-ID": "40"}) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            events = await read_events(response, 5)
    assert [json.loads(e.data)["seq"] for e in events[:5]] == [41, 42, 43, 44, 45]
    assert app.asked == ["40"]
    await wait_for(lambda: not proxy.wire.open)
    conn = proxy.wire.connections()[0]
    assert conn.kind == "sse" and conn.resume_from == "40" and conn.sse_retry_ms == 300
    assert int(conn.last_event_id or 0) >= 45


async def wait_for(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_sse_delay_is_added_per_event(sse: tuple[FaultProxy, SseApp]) -> None:
    proxy, _ = sse
    proxy.add_fault("delay=150ms:sse")
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events") as response:
            parser = EventStreamParser()
            lags: list[float] = []
            async for chunk in response.content.iter_any():
                for event in parser.feed(chunk):
                    lags.append(time.time() * 1000 - json.loads(event.data)["t"])
                if len(lags) >= 10:
                    break
    # asyncio timers may fire up to a clock tick early; the upstream stamps t before writing.
    assert min(lags) >= 145 and max(lags) < 150 + 100, lags


async def test_sse_loss_drops_events_but_keeps_the_stream(sse: tuple[FaultProxy, SseApp]) -> None:
    proxy, _ = sse
    proxy.add_fault("loss=50%:sse")
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events") as response:
            events = await read_events(response, 20)
    seqs = [json.loads(e.data)["seq"] for e in events]
    assert seqs == sorted(seqs) and seqs[-1] > len(seqs)  # gaps, in order, stream still up


async def test_drop_aborts_the_stream_and_the_reconnect_is_seen_with_its_id(sse: tuple[FaultProxy, SseApp]) -> None:
    proxy, app = sse
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events") as response:
            events = await read_events(response, 3)
            proxy.add_fault("drop:sse")
            with pytest.raises(aiohttp.ClientError):
                async for _ in response.content.iter_any():
                    pass
        await asyncio.sleep(0.05)
        async with http.get(proxy.url + "/events", headers={"Last-Event-ID": events[-1].last_event_id}) as response:
            await read_events(response, 1)
    client = proxy.wire_json()["clients"][0]
    second = client["decisions"][1]
    assert second["resume_from"] == events[-1].last_event_id
    assert second["after_close_s"] is not None and second["after_close_s"] >= 0.05


async def test_error_fault_answers_503_with_retry_after(sse: tuple[FaultProxy, SseApp]) -> None:
    proxy, app = sse
    proxy.add_fault("error=503:sse")
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events", headers={"Accept": "text/event-stream"}) as response:
            assert response.status == 503 and response.headers["Retry-After"] == "1"
        async with http.get(proxy.url + "/events") as response:  # no Accept: known by its answer
            assert response.status == 503
        async with http.get(proxy.url + "/hello") as response:
            assert response.status == 200  # the fault is scoped to sse
    assert app.asked == [None]  # the first, with Accept, never reached the upstream
    assert proxy.wire_json()["clients"][0]["decisions"][0]["refused"] == 503


async def test_upstream_down_is_a_502_with_the_reason() -> None:
    async with FaultProxy("down", "127.0.0.1:1") as proxy:
        async with aiohttp.ClientSession() as http:
            async with http.get(proxy.url + "/x") as response:
                assert response.status == 502
                assert "unreachable" in await response.text()
        assert "unreachable" in proxy.wire_json()["routes"][0]["last_error"]
    with pytest.raises(aiohttp.ClientConnectionError):  # stopped: nothing listens any more
        async with aiohttp.ClientSession() as http:
            await http.get(proxy.url + "/x")


async def test_websocket_messages_both_ways_and_the_close_code_pass_unchanged() -> None:
    async with ws_upstream() as url:
        proxy = FaultProxy("ws", url)
        await proxy.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(proxy.url + "/echo") as ws:
                    await ws.send_str("ping")
                    assert (await ws.receive()).data == "ping"
                    await ws.send_bytes(b"\x00\x01")
                    assert (await ws.receive()).data == b"\x00\x01"
                async with http.ws_connect(proxy.url + "/close4001") as ws:
                    assert (await ws.receive()).data == "hello"
                    msg = await ws.receive()
                    assert msg.type == aiohttp.WSMsgType.CLOSE
                    assert (msg.data, msg.extra) == (4001, "bye from upstream")
            await wait_for(lambda: not proxy.wire.open)
            closed = [c for c in proxy.wire.connections() if c.path == "/close4001"][0]
            assert (closed.close_code, closed.close_reason, closed.closed_by) == (4001, "bye from upstream", "upstream")
        finally:
            await proxy.stop()


async def test_websocket_duplicate_and_upstream_delay() -> None:
    async with ws_upstream() as url:
        proxy = FaultProxy("ws", url, seed=3)
        await proxy.start()
        try:
            proxy.add_fault("duplicate=100%:ws")
            proxy.add_fault("delay=100ms:ws/up")
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(proxy.url + "/echo") as ws:
                    sent = time.monotonic()
                    await ws.send_str("a")
                    # Delayed 100 ms on its way up; its echo duplicated on the way down.
                    first = await ws.receive()
                    took = time.monotonic() - sent
                    second = await ws.receive()
            assert (first.data, second.data) == ("a", "a")
            assert took >= 0.099  # the hold is timed on the loop's clock: 1 ms of clock granularity
        finally:
            await proxy.stop()
