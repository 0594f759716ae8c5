"""Malformed and unwelcome requests to the proxy's Toxiproxy API get Toxiproxy-shaped errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from rtplay.proxy.api import ApiServer, ProxyRegistry
from rtplay.proxy.guard import MAX_API_BODY
from tests.hostile.conftest import strict_json


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    registry = ProxyRegistry(seed=0)
    server = ApiServer(registry, "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            yield http
    finally:
        await server.stop()
        await registry.close()


def shaped(response: httpx.Response, status: int, says: str) -> None:
    assert response.status_code == status, response.text
    body = strict_json(response.text)
    assert body["status"] == status and says in body["error"], body


async def test_unknown_names_are_404(api: httpx.AsyncClient) -> None:
    shaped(await api.get("/proxies/nope"), 404, "proxy not found")
    shaped(await api.delete("/proxies/nope"), 404, "proxy not found")
    shaped(await api.post("/proxies/nope/toxics", json={"type": "latency"}), 404, "proxy not found")
    await api.post("/proxies", json={"name": "app", "upstream": "127.0.0.1:9"})
    shaped(await api.get("/proxies/app/toxics/nope"), 404, "toxic not found")
    shaped(await api.delete("/proxies/app/toxics/nope"), 404, "toxic not found")


async def test_duplicates_are_409(api: httpx.AsyncClient) -> None:
    created = await api.post("/proxies", json={"name": "app", "upstream": "127.0.0.1:9"})
    assert created.status_code == 201 and created.json()["listen"].startswith("127.0.0.1:")
    shaped(await api.post("/proxies", json={"name": "app", "upstream": "127.0.0.1:9"}), 409, "proxy already exists")
    assert (await api.post("/proxies/app/toxics", json={"type": "latency"})).status_code == 200
    shaped(await api.post("/proxies/app/toxics", json={"type": "latency"}), 409, "already exists")


@pytest.mark.parametrize("body", [
    b"{", b"[1,", b"NaN", b'{"name": "x", "upstream": 5}', b'{"name": "a/b", "upstream": "h:1"}',
    b'{"name": "x", "upstream": "ftp://h:1"}', b"[" * 50_000, b'{"name": "x", "upstream": "h:1", "listen": "nowhere"}',
    b'{"name": "x", "upstream": "h:1", "toxics": [{"type": "bogus"}]}', b"\xff\xfe",
])
async def test_bad_proxies_are_400_and_create_nothing(api: httpx.AsyncClient, body: bytes) -> None:
    shaped(await api.post("/proxies", content=body), 400, "bad request")
    assert (await api.get("/proxies")).json() == {}


async def test_bad_toxics_are_400(api: httpx.AsyncClient) -> None:
    await api.post("/proxies", json={"name": "app", "upstream": "127.0.0.1:9"})
    for body in ({"type": "latency", "attributes": {"latency": "slow"}}, {"type": "warp"}, {"type": "latency", "toxicity": 2}):
        shaped(await api.post("/proxies/app/toxics", json=body), 400, "bad request")
    assert (await api.get("/proxies/app/toxics")).json() == []


async def test_an_oversized_body_is_413(api: httpx.AsyncClient) -> None:
    shaped(await api.post("/proxies", content=b" " * (MAX_API_BODY + 10)), 413, "larger than")


@pytest.mark.parametrize("headers, says", [
    ({"Host": "evil.example"}, "not a loopback name"),
    ({"Origin": "http://evil.example"}, "cross-origin"),
    ({"Sec-Fetch-Site": "cross-site"}, "cross-site"),
])
async def test_cross_site_and_rebinding_requests_are_refused(api: httpx.AsyncClient, headers: dict[str, str], says: str) -> None:
    shaped(await api.post("/reset", headers=headers), 403, says)
    shaped(await api.get("/proxies", headers=headers), 403, says)


def _port_of(api: httpx.AsyncClient) -> int:
    port = api.base_url.port
    assert port is not None
    return port


@pytest.mark.parametrize("name", ["127.evil.example", "127.0.0.1.evil.example", "localhost.evil.example", "127.1"])
async def test_a_rebinding_name_that_looks_like_loopback_is_refused(api: httpx.AsyncClient, name: str) -> None:
    """The server's DNS-rebinding rule holds for the proxy's API too: a name that resolves to
    127.0.0.1 is still not a loopback name, and it can create nothing."""
    host = f"{name}:{_port_of(api)}"
    shaped(await api.post("/proxies", json={"name": "app", "upstream": "127.0.0.1:9"}, headers={"Host": host}),
           403, "not a loopback name")
    assert (await api.get("/proxies")).json() == {}


async def test_a_loopback_name_with_another_port_is_refused(api: httpx.AsyncClient) -> None:
    """A rebinding page on port P sends Host 127.0.0.1:P, not the API's port."""
    for host in (f"127.0.0.1:{_port_of(api) + 1}", "localhost"):  # no port: 80
        shaped(await api.post("/reset", headers={"Host": host}), 403, "does not name this listener's port")


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "127.0.0.2", "LOCALHOST"])
async def test_exact_loopback_names_with_the_api_port_pass(api: httpx.AsyncClient, name: str) -> None:
    response = await api.get("/proxies", headers={"Host": f"{name}:{_port_of(api)}"})
    assert response.status_code == 200, response.text


async def test_beyond_loopback_the_token_is_required() -> None:
    registry = ProxyRegistry()
    server = ApiServer(registry, "127.0.0.1", 0)
    server.token = "secret"  # as when bound beyond loopback (api_token)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, trust_env=False) as http:
            shaped(await http.get("/proxies", headers={"Host": "10.1.2.3:8474"}), 403, "token is required")
            ok = await http.get("/proxies", headers={"Host": "10.1.2.3:8474", "X-Rtplay-Token": "secret"})
            assert ok.status_code == 200
    finally:
        await server.stop()
