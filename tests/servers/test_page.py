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
        for src in ("/static/page.js", "/static/accounting.js", "/static/page.css", "/static/favicon.svg",
                    "/static/chart.js", "/static/uPlot.iife.min.js", "/static/uPlot.min.css", "/static/uPlot.LICENSE"):
            assert src in page.text
            assert (await http.get(server.http_url + src)).status_code == 200
        assert "MIT" in (await http.get(server.http_url + "/static/uPlot.LICENSE")).text
        icon = await http.get(server.http_url + "/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
        config = (await http.get(server.http_url + "/page/config")).json()
        assert config == {"wt_url": server.wt_url, "cert_sha256": server.cert.sha256_hex, "last": server.hub.last_seq,
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


async def test_a_page_of_the_users_own_can_read_the_config_and_retry_after(server: Server) -> None:
    """Issue 23 item 6: /page/config (the certificate hash changes at every start) and a 503's
    Retry-After must be readable from a page served elsewhere."""
    from rtplay.protocol.faults import Kind

    origin = {"Origin": "http://my-own-page.example"}
    async with httpx.AsyncClient(trust_env=False) as http:
        config = await http.get(server.http_url + "/page/config", headers=origin)
        assert config.headers.get("access-control-allow-origin") == "*"
        fault = server.add_fault(Kind.ERROR, "poll", 503)
        try:
            answer = await http.get(server.http_url + "/poll?since=0", headers=origin)
        finally:
            server.clear_faults(fault.id)
    assert answer.status_code == 503 and answer.headers.get("retry-after")
    assert "retry-after" in answer.headers.get("access-control-expose-headers", "").lower()


def journal(start: int, *entries: list[object]) -> dict[str, object]:
    return report() | {"journal": {"from": start, "entries": list(entries)}}


async def test_the_journal_is_kept_in_order_once_and_read_from_an_index(server: Server) -> None:
    url = server.http_url + "/browser/report"
    for _ in range(64):  # a report's figures must lie within what was published
        server.broadcaster.publish()
    async with httpx.AsyncClient(trust_env=False, headers={REPORT_KEY_HEADER: server.browser_reports.key}) as http:
        first = [["ws", "up", 1.5e12], ["ws", "seq", "main", 1, 5]]
        assert (await http.post(url, json=journal(0, *first))).status_code == 204
        # A report re-sent after its answer was lost adds nothing twice; a later one goes on.
        again = journal(0, *first, ["ws", "seq", "main", 6, 9])
        assert (await http.post(url, json=again)).status_code == 204
        # Entries the page had to drop (its own bound) leave a gap entry in their place.
        assert (await http.post(url, json=journal(7, ["ws", "reset", "main", 40]))).status_code == 204
        read = (await http.get(server.http_url + "/browser/journal", params={"page": "p1", "from": "1"})).json()
        assert read["entries"] == [["ws", "seq", "main", 1, 5], ["ws", "seq", "main", 6, 9], ["*", "gap", 4],
                                   ["ws", "reset", "main", 40]]
        assert (read["from"], read["next"], read["missed"]) == (1, 5, 0)
        for entry, reason in [(["ws", "seq", "main", 9, 3], "run goes up"), (["ws", "dance"], "known"),
                              (["xx", "up", 1], "known"), (["ws", "seq", "nope", 1, 2], "unknown channel"),
                              (["ws", "up", -1], "time")]:
            response = await http.post(url, json=journal(8, entry))
            assert response.status_code == 400 and reason in response.json()["error"], (entry, response.text)
        missing = await http.get(server.http_url + "/browser/journal", params={"page": "nope", "from": "0"})
        assert missing.status_code == 404
