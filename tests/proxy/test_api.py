"""Toxiproxy's API beyond what toxiproxy-python uses: populate, updates, rtplay's toxic types, the wire."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from rtplay.proxy.api import ApiServer, ProxyRegistry
from tests.proxy.upstreams import sse_upstream


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with sse_upstream() as (url, _):
        registry = ProxyRegistry(seed=0)
        server = ApiServer(registry, "127.0.0.1", 0)
        await server.start()
        try:
            async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
                yield http, url.removeprefix("http://")
        finally:
            await server.stop()
            await registry.close()


async def test_version_and_populate_create_or_keep(api: tuple[httpx.AsyncClient, str]) -> None:
    http, upstream = api
    assert (await http.get("/version")).json()["version"]
    body = [{"name": "a", "upstream": upstream}, {"name": "b", "upstream": upstream, "enabled": False}]
    made = await http.post("/populate", json=body)
    assert made.status_code == 201 and [p["name"] for p in made.json()["proxies"]] == ["a", "b"]
    listen = made.json()["proxies"][0]["listen"]
    again = await http.post("/populate", json=body)
    assert again.json()["proxies"][0]["listen"] == listen  # same config: kept, not recreated
    proxies = (await http.get("/proxies")).json()
    assert proxies["b"]["enabled"] is False and proxies["a"]["toxics"] == []


async def test_disable_enable_and_update_a_toxic(api: tuple[httpx.AsyncClient, str]) -> None:
    http, upstream = api
    listen = (await http.post("/proxies", json={"name": "app", "upstream": upstream})).json()["listen"]
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"http://{listen}/hello")).status_code == 200
        assert (await http.post("/proxies/app", json={"enabled": False})).json()["enabled"] is False
        with pytest.raises(httpx.ConnectError):
            await client.get(f"http://{listen}/hello")
        await http.post("/proxies/app", json={"enabled": True})
        assert (await client.get(f"http://{listen}/hello")).status_code == 200
    created = await http.post("/proxies/app/toxics", json={"type": "error", "attributes": {"status": 503, "kind": "http"}})
    assert created.json()["attributes"] == {"status": 503, "retry_after": 1, "kind": "http"}
    updated = await http.post("/proxies/app/toxics/error_downstream", json={"attributes": {"retry_after": 5}})
    assert updated.json()["attributes"]["retry_after"] == 5
    async with httpx.AsyncClient(trust_env=False) as client:
        refused = await client.get(f"http://{listen}/hello")
        assert (refused.status_code, refused.headers["Retry-After"]) == (503, "5")
    wire = (await http.get("/proxies/app/wire")).json()
    assert [d["refused"] for d in wire["clients"][0]["decisions"]] == [None, None, 503]
    assert (await http.delete("/proxies/app/toxics/error_downstream")).status_code == 204
    assert (await http.delete("/proxies/app")).status_code == 204
    assert (await http.get("/proxies")).json() == {}
