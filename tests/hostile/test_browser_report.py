"""Item 4: only the page this server served may report the browser's figures, within bounds."""

from __future__ import annotations

import json

import httpx
import pytest

from servers.http.browser_report import REPORT_KEY_HEADER
from servers.runner import Server


def report(delivered: int = 5) -> dict[str, object]:
    channel = {"delivered": delivered, "missing": 0, "highest": min(delivered, 5), "lost_to_reset": 0,
               "duplicates": 0, "out_of_order": 0, "latency_ms": {"p50": 1.0, "p95": 2, "p99": 2, "max": 3}}
    client = {"state": "open", "connects": 1, "reconnects": 0, "downtime_s": 0.0, "channels": {"main": channel}}
    return {"page": "forged", "agent": "Mozilla/5.0 (victim)", "clients": {"ws": client}}


async def _post(server: Server, headers: dict[str, str], body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(trust_env=False) as http:
        return await http.post(server.http_url + "/browser/report", content=body, headers=headers)


async def _pages(server: Server) -> list[object]:
    async with httpx.AsyncClient(trust_env=False) as http:
        return (await http.get(server.http_url + "/browser/report")).json()["pages"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain"},  # a cross-origin "simple" request
        {"Content-Type": "application/x-www-form-urlencoded"},  # a form
        {"Content-Type": "application/json", "Origin": "null"},  # a sandboxed frame
        {"Content-Type": "application/json", "Origin": "http://evil.example"},
        {"Content-Type": "application/json"},  # same machine, but not the page: no key
        {"Content-Type": "application/json", REPORT_KEY_HEADER: "guess"},
    ],
)
async def test_a_report_not_from_the_servers_own_page_is_refused(server: Server, headers: dict[str, str]) -> None:
    for _ in range(5):
        server.broadcaster.publish()
    response = await _post(server, headers, json.dumps(report()).encode())
    assert response.status_code in (403, 415), response.text
    assert "access-control-allow-origin" not in response.headers
    assert await _pages(server) == []


async def test_the_servers_own_page_reports_with_its_key(server: Server) -> None:
    for _ in range(5):
        server.broadcaster.publish()
    async with httpx.AsyncClient(trust_env=False) as http:
        key = (await http.get(server.http_url + "/page/config")).json()["report_key"]
    origin = server.http_url
    headers = {"Content-Type": "application/json", REPORT_KEY_HEADER: key, "Origin": origin}
    assert (await _post(server, headers, json.dumps(report()).encode())).status_code == 204
    assert len(await _pages(server)) == 1


@pytest.mark.parametrize("figure", ["delivered", "duplicates"])
async def test_figures_beyond_what_was_published_are_refused(server: Server, figure: str) -> None:
    for _ in range(5):
        server.broadcaster.publish()
    body = report()
    body["clients"]["ws"]["channels"]["main"][figure] = 10**30  # type: ignore[index]
    headers = {"Content-Type": "application/json", REPORT_KEY_HEADER: server.browser_reports.key}
    response = await _post(server, headers, json.dumps(body).encode())
    assert response.status_code == 400 and "exceeds" in response.json()["error"]
    assert await _pages(server) == []


async def test_no_cors_on_the_report_and_no_report_key_for_another_origin(server: Server) -> None:
    """Another origin can read neither the page ids and user agents nor the report key: the
    page config is readable cross-origin (a page of the user's own needs the certificate hash),
    without the key; this server's own page gets the key."""
    async with httpx.AsyncClient(trust_env=False) as http:
        response = await http.get(server.http_url + "/browser/report", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in response.headers
        foreign = await http.get(server.http_url + "/page/config", headers={"Origin": "http://evil.example"})
        assert "report_key" not in foreign.json() and foreign.json()["cert_sha256"] == server.cert.sha256_hex
        own = await http.get(server.http_url + "/page/config", headers={"Origin": server.http_url})
        assert own.json()["report_key"] == server.browser_reports.key
        preflight = await http.options(server.http_url + "/browser/report", headers={
            "Origin": "http://evil.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": REPORT_KEY_HEADER})
        assert "access-control-allow-origin" not in preflight.headers
