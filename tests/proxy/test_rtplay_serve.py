"""The proxy in front of rtplay's own server: its SSE ids, retry and WebSocket `since` resume
are what the wire view reports."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rtplay.model.eventsource import EventStreamParser
from rtplay.proxy.proxy import FaultProxy
from servers.core.context import HttpConfig
from servers.runner import Server, ServerConfig


@pytest.fixture
async def proxied() -> AsyncIterator[FaultProxy]:
    server = Server(ServerConfig(rate=50, http=HttpConfig(sse_retry_ms=250)))
    await server.start()
    proxy = FaultProxy("rtplay", server.http_url)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
        await server.stop()


async def test_sse_of_rtplay_serve_resumes_with_last_event_id_and_retry_seen(proxied: FaultProxy) -> None:
    async with aiohttp.ClientSession() as http:
        parser = EventStreamParser()
        async with http.get(proxied.url + "/sse") as response:
            async for chunk in response.content.iter_any():
                if len(parser.feed(chunk)) and parser.last_event_id and int(parser.last_event_id) >= 3:
                    break
        resume = parser.last_event_id
        async with http.get(proxied.url + "/sse", headers={"Last-Event-ID": resume}) as response:
            parser.new_stream()
            events = []
            async for chunk in response.content.iter_any():
                events += parser.feed(chunk)
                if events:
                    break
    assert json.loads(events[0].data)["seq"] == int(resume) + 1
    conns = [c for c in proxied.wire.connections() if c.path == "/sse"]
    assert [c.sse_retry_ms for c in conns] == [250, 250]
    assert conns[1].resume_from == resume


async def test_websocket_of_rtplay_serve_resumes_with_since(proxied: FaultProxy) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(proxied.url + "/ws?since=0") as ws:
            first = json.loads((await ws.receive()).data)
            assert first["seq"] == 1
            await ws.send_str(json.dumps({"ping": 1.5}))
            while "pong" not in (reply := json.loads((await ws.receive()).data)):
                pass
            assert reply == {"pong": 1.5}
    decisions = proxied.wire_json()["clients"][0]["decisions"]
    assert decisions[0]["resume_from"] == "0"
