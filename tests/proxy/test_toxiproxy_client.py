"""An unmodified Toxiproxy client from PyPI (toxiproxy-python) drives rtplay's proxy API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import requests
from toxiproxy import Toxiproxy

from rtplay.proxy.api import ApiServer, ProxyRegistry
from tests.proxy.upstreams import sse_upstream


@pytest.fixture
async def api() -> AsyncIterator[tuple[ApiServer, str]]:
    async with sse_upstream() as (url, _):
        registry = ProxyRegistry(seed=0)
        server = ApiServer(registry, "127.0.0.1", 0)
        await server.start()
        try:
            yield server, url.removeprefix("http://")
        finally:
            await server.stop()
            await registry.close()


def timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    response = requests.get(url, timeout=10)
    return response.status_code, time.monotonic() - started


async def test_toxiproxy_python_creates_a_proxy_adds_latency_removes_it_and_resets(api: tuple[ApiServer, str]) -> None:
    server, upstream = api
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", server.port)
    proxy = await asyncio.to_thread(client.create, upstream=upstream, name="app")
    url = f"http://{proxy.listen}/hello"
    status, baseline = await asyncio.to_thread(timed_get, url)
    assert status == 200

    await asyncio.to_thread(proxy.add_toxic, type="latency", attributes={"latency": 200})
    assert set(await asyncio.to_thread(proxy.toxics)) == {"latency_downstream"}
    status, slow = await asyncio.to_thread(timed_get, url)
    assert status == 200 and slow >= 0.2

    await asyncio.to_thread(proxy.destroy_toxic, "latency_downstream")
    status, fast = await asyncio.to_thread(timed_get, url)
    assert status == 200 and fast < slow and await asyncio.to_thread(proxy.toxics) == {}

    await asyncio.to_thread(proxy.add_toxic, type="latency", attributes={"latency": 200})
    await asyncio.to_thread(proxy.disable)
    with pytest.raises(requests.ConnectionError):
        await asyncio.to_thread(timed_get, url)
    assert await asyncio.to_thread(client.reset)
    again = await asyncio.to_thread(client.get_proxy, "app")
    assert again.enabled is True and await asyncio.to_thread(again.toxics) == {}
    status, _ = await asyncio.to_thread(timed_get, url)
    assert status == 200


async def test_toxiproxy_python_sees_duplicates_and_unknowns_as_its_exceptions(api: tuple[ApiServer, str]) -> None:
    from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

    server, upstream = api
    client = Toxiproxy()
    client.update_api_consumer("127.0.0.1", server.port)
    proxy = await asyncio.to_thread(client.create, upstream=upstream, name="app")
    with pytest.raises(ProxyExists):
        await asyncio.to_thread(client.create, upstream=upstream, name="app")
    with pytest.raises(InvalidToxic):
        await asyncio.to_thread(proxy.add_toxic, type="latency", attributes={"latency": -5})
    with pytest.raises(NotFound):
        await asyncio.to_thread(proxy.destroy_toxic, "nope")
    assert await asyncio.to_thread(client.destroy, proxy)
    assert await asyncio.to_thread(client.proxies) == {}
