"""The browser page's server side: CORS on errors, static files, the browser report endpoint."""

from __future__ import annotations

import json

import httpx
import pytest

from servers.http.browser_report import MAX_PAGES, MAX_REPORT_BYTES, REPORT_KEY_HEADER
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


async def test_page_files_and_favicon_are_served_from_package_data(server: Server) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        page = await http.get(server.http_url + "/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        for src in ("/static/page.js", "/static/accounting.js", "/static/page.css", "/static/favicon.svg"):
            assert src in page.text
            assert (await http.get(server.http_url + src)).status_code == 200
        icon = await http.get(server.http_url + "/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        config = (await http.get(server.http_url + "/page/config")).json()
        assert config == {"wt_url": server.wt_url, "cert_sha256": server.cert.sha256_hex,
                          "report_key": server.browser_reports.key}
        assert (await http.get(server.http_url + "/static/../runner.py")).status_code == 404


def report(page: str = "p1", **client: object) -> dict[str, object]:
    channel = {"delivered": 5, "missing": 0, "highest": 5, "lost_to_reset": 0, "duplicates": 0,
               "out_of_order": 0, "latency_ms": {"p50": 1.5, "p95": 2, "p99": 2, "max": 3}}
    entry = {"state": "open", "connects": 1, "reconnects": 0, "downtime_s": 0.1,
             "channels": {"main": channel}, "log": ["open"], "events": [["down", 1.5e12], ["back", 1.5e12]]} | client
    return {"page": page, "agent": "test", "clients": {"ws": entry}}


async def test_browser_reports_are_validated_kept_per_page_and_bounded(server: Server) -> None:
    url = server.http_url + "/browser/report"
    for _ in range(5):
        server.broadcaster.publish()
    headers = {REPORT_KEY_HEADER: server.browser_reports.key}
    async with httpx.AsyncClient(trust_env=False, headers=headers) as http:
        assert (await http.post(url, json=report())).status_code == 204
        bad = [
            (b"nope", "not JSON"),
            (json.dumps(report(state="dancing")).encode(), "state must be"),
            (json.dumps(report(connects=-1)).encode(), "connects"),
            (json.dumps(report(page="../x")).encode(), "page must be"),
            (json.dumps(report(channels={})).encode(), "empty"),
            (json.dumps(report(events=[["up", 5]])).encode(), "events entries"),
            (b"x" * (MAX_REPORT_BYTES + 1), "larger than"),
        ]
        for body, reason in bad:
            response = await http.post(url, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 400 and reason in response.json()["error"], (reason, response.text)
        for i in range(MAX_PAGES + 3):
            assert (await http.post(url, json=report(page=f"p{i}"))).status_code == 204
        pages = (await http.get(url)).json()["pages"]
    assert len(pages) == MAX_PAGES and pages[-1]["page"] == f"p{MAX_PAGES + 2}"
    assert pages[-1]["clients"]["ws"]["channels"]["main"]["delivered"] == 5
