"""The browser page's server side: CORS on errors, static files, the browser report endpoint."""

from __future__ import annotations

import httpx
import pytest

from servers.runner import Server

pytestmark = pytest.mark.timeout(15)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/poll?since=abc"), ("GET", "/longpoll?since=x"), ("GET", "/longpoll?timeout=x"), ("POST", "/rtc/offer")],
)
async def test_a_400_carries_cors_so_a_browser_can_read_the_reason(server: Server, method: str, path: str) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.request(method, server.http_url + path, headers={"Origin": "http://elsewhere"})
    assert response.status_code == 400
    assert response.headers.get("access-control-allow-origin") == "*"
    assert response.json()["error"]
