"""The browser page module on its own (:func:`servers.http.page.install` on a bare app): the
page and its files from package data, its live config, and CORS exactly on the endpoints a
page from elsewhere may use."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from servers.http.page import CORS_PREFIXES, STATIC, install, static_file

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[tuple[Client, dict[str, str]]]:
    config = {"wt_url": "https://127.0.0.1:4433/wt", "cert_hash": "aa"}

    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path})

    async def refuses(request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(text='{"error": "since must be a non-negative integer"}', content_type="application/json")

    app = web.Application()
    for path in ("/poll", "/control/status", "/elsewhere"):
        app.router.add_get(path, ok)
    app.router.add_get("/sse", refuses)
    install(lambda: dict(config))(app)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as http:
        yield http, config


async def test_the_page_and_every_file_it_loads_are_served_from_package_data(client: tuple[Client, dict[str, str]]) -> None:
    http, _ = client
    index = await http.get("/")
    html = await index.text()
    assert index.status == 200 and index.content_type == "text/html"
    assert index.headers["Cache-Control"] == "no-cache"
    assert html.encode() == static_file("index.html")
    loaded = re.findall(r'(?:src|href)="/static/([^"]+)"', html)
    assert loaded and set(loaded) <= set(STATIC)  # nothing from a CDN, nothing missing
    for name, content_type in STATIC.items():
        response = await http.get(f"/static/{name}")
        assert response.status == 200 and response.content_type == content_type
        assert await response.read() == static_file(name)
    favicon = await http.get("/favicon.ico")
    assert favicon.content_type == "image/svg+xml" and await favicon.read() == static_file("favicon.svg")


async def test_only_the_listed_files_are_served(client: tuple[Client, dict[str, str]]) -> None:
    http, _ = client
    for path in ("/static/../control.py", "/static/nothing.js", "/static/"):
        assert (await http.get(path)).status == 404


async def test_the_config_is_read_at_each_request_and_never_cached(client: tuple[Client, dict[str, str]]) -> None:
    http, config = client
    first = await http.get("/page/config")
    assert await first.json() == config and first.headers["Cache-Control"] == "no-store"
    config["cert_hash"] = "bb"  # a restarted QUIC listener has a new certificate
    assert (await (await http.get("/page/config")).json())["cert_hash"] == "bb"


@pytest.mark.parametrize("path", ["/poll", "/sse"])
async def test_the_read_endpoints_carry_cors_even_on_a_400(client: tuple[Client, dict[str, str]], path: str) -> None:
    http, _ = client
    response = await http.get(path, headers={"Origin": "http://example.test"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    if path == "/sse":  # a parser's 400: the page can read why
        assert response.status == 400 and "since" in (await response.json())["error"]


async def test_a_preflight_is_answered_for_the_read_endpoints_only(client: tuple[Client, dict[str, str]]) -> None:
    http, _ = client
    for prefix in CORS_PREFIXES:
        headers = {"Origin": "http://example.test", "Access-Control-Request-Method": "GET"}
        response = await http.options(f"{prefix}/x", headers=headers)
        assert response.status == 204
        assert "Last-Event-ID" in response.headers["Access-Control-Allow-Headers"]
    control = await http.options("/control/status", headers={"Origin": "http://example.test"})
    assert "Access-Control-Allow-Origin" not in control.headers


@pytest.mark.parametrize("path", ["/control/status", "/elsewhere", "/"])
async def test_the_control_api_and_other_paths_never_get_cors(client: tuple[Client, dict[str, str]], path: str) -> None:
    http, _ = client
    response = await http.get(path, headers={"Origin": "http://example.test"})
    assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
