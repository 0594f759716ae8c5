"""Toxiproxy's byte-level toxics and rtplay's outage/stall/reorder on live connections."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from rtplay.proxy.proxy import FaultProxy
from tests.proxy.test_relay import read_events
from tests.proxy.upstreams import SseApp, sse_upstream, ws_upstream


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    async with sse_upstream(SseApp(interval=0.01)) as (url, _):
        proxy = FaultProxy("app", url, seed=2)
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.stop()


async def test_limit_data_cuts_the_stream_after_its_bytes(proxy: FaultProxy) -> None:
    proxy.add_toxic("cap", "limit_data", {"bytes": 300})
    received = b""
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events") as response:
            with pytest.raises(aiohttp.ClientPayloadError):
                async for chunk in response.content.iter_any():
                    received += chunk
    assert 0 < len(received) <= 300


async def test_reset_peer_aborts_after_its_timeout(proxy: FaultProxy) -> None:
    proxy.add_toxic("reset", "reset_peer", {"timeout": 200})
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.get(proxy.url + "/events") as response:
            with pytest.raises(aiohttp.ClientPayloadError):
                async for _ in response.content.iter_any():
                    pass
        assert 0.2 <= time.monotonic() - started < 2.0
    assert proxy.wire.connections()[0].closed_by == "proxy"


async def test_slow_close_holds_the_end_of_a_response(proxy: FaultProxy) -> None:
    async with aiohttp.ClientSession() as http:
        started = time.monotonic()
        async with http.get(proxy.url + "/hello") as response:
            await response.read()
        baseline = time.monotonic() - started
        proxy.add_toxic("slow", "slow_close", {"delay": 300})
        started = time.monotonic()
        async with http.get(proxy.url + "/hello") as response:
            await response.read()
        assert time.monotonic() - started >= 0.3 > baseline


async def test_bandwidth_limits_the_rate(proxy: FaultProxy) -> None:
    proxy.add_toxic("bw", "bandwidth", {"rate": 4})  # 4 KB/s: an event of ~60 bytes each 15 ms
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events") as response:
            started = time.monotonic()
            total = 0
            async for chunk in response.content.iter_any():
                total += len(chunk)
                if total >= 2000:
                    break
            assert time.monotonic() - started >= 2000 / 4000 * 0.8


async def test_stall_holds_events_until_cleared_then_they_all_arrive(proxy: FaultProxy) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(proxy.url + "/events") as response:
            await read_events(response, 2)
            stall = proxy.add_fault("stall:sse")
            pipe_wait = asyncio.get_running_loop().call_later(0.3, proxy.toxics.remove, stall.name)
            started = time.monotonic()
            events = await read_events(response, 3)
            pipe_wait.cancel()
    assert time.monotonic() - started >= 0.25
    seqs = [json.loads(e.data)["seq"] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # nothing lost while stalled


async def test_outage_refuses_connections_then_comes_back(proxy: FaultProxy) -> None:
    outage = proxy.add_fault("outage=0.3s")
    await asyncio.sleep(0)  # the listener closes on the next loop turn
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(proxy.url + "/hello")
        deadline = time.monotonic() + 5
        while outage in proxy.toxics:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)
        async with http.get(proxy.url + "/hello") as response:
            assert response.status == 200


async def test_reorder_swaps_websocket_messages() -> None:
    async with ws_upstream() as url:
        proxy = FaultProxy("ws", url, seed=0)
        await proxy.start()
        try:
            proxy.add_fault("reorder=100%:ws")
            async with aiohttp.ClientSession() as http:
                async with http.ws_connect(proxy.url + "/echo") as ws:
                    for text in ("a", "b", "c", "d"):
                        await ws.send_str(text)
                    got = [(await ws.receive()).data for _ in range(4)]
            assert sorted(got) == ["a", "b", "c", "d"] and got != ["a", "b", "c", "d"]
        finally:
            await proxy.stop()
