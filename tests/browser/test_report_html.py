"""The HTML report of a 20 s six-transport run with a drop and an outage, opened in real
Chromium with the network off: every chart draws, nothing is fetched, nothing logs an error."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from rtplay.cli.main import main
from tests.browser.conftest import MISSING
from tests.report.conftest import recorded

#: The report must stay small enough to attach to a CI run or a review.
MAX_REPORT_BYTES = 5_000_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def opened(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    """The report written by ``rtplay report``, open in an offline Chromium page."""
    if MISSING is not None:
        pytest.skip(f"needs Chromium and Playwright: {MISSING}")
    from playwright.async_api import Request, Route, async_playwright

    from rtplay.engine.browser import chromium_path

    tmp = tmp_path_factory.mktemp("report")
    run = recorded("run20", tmp)
    (tmp / "run20.json").write_text((Path(__file__).parent.parent / "report/fixtures/run20.json").read_text())
    html = tmp / "report.html"
    assert main(["report", str(tmp / "run20.json"), "--log", str(run.log), "-o", str(html)]) == 0
    page_url = html.as_uri()
    left: list[str] = []
    errors: list[str] = []

    async def route(r: Route, request: Request) -> None:
        if request.url == page_url:
            await r.continue_()
        else:  # anything else would leave the page: refuse and remember it
            left.append(request.url)
            await r.abort()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path()))
        try:
            context = await browser.new_context(offline=True, viewport={"width": 1200, "height": 900})
            await context.route("**/*", route)
            page = await context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(page_url, wait_until="load")
            await page.wait_for_function(
                "document.querySelectorAll('.js-plotly-plot').length > 0 && "
                "[...document.querySelectorAll('.js-plotly-plot')].every(d => d.querySelector('.main-svg'))"
            )
            yield {"page": page, "html": html, "left": left, "errors": errors, "report": run.report, "tmp": tmp}
        finally:
            await browser.close()


@pytest.mark.asyncio(loop_scope="module")
async def test_the_report_is_one_small_file_that_fetches_nothing(opened: dict[str, Any]) -> None:
    html: Path = opened["html"]
    assert html.stat().st_size < MAX_REPORT_BYTES
    text = html.read_text()
    assert text.count("Plotly.newPlot") >= 4  # latency, arrivals, losses, health (no crowd in this run)
    assert re.findall(r"<script[^>]*\bsrc=", text) == []  # plotly.js is inline, nothing is loaded
    assert opened["left"] == []
    assert opened["errors"] == []


@pytest.mark.asyncio(loop_scope="module")
async def test_every_chart_draws_its_data(opened: dict[str, Any]) -> None:
    page = opened["page"]
    charts = await page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].map(d => ({
        title: (d.querySelector('.gtitle') || {}).textContent || '',
        traces: d.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length,
        points: d.querySelectorAll('.scatterlayer .point, .barlayer .point, .scatterlayer .js-line').length,
        bands: d.querySelectorAll('.shapelayer path').length,
        height: d.getBoundingClientRect().height,
    }))""")
    titles = [c["title"] for c in charts]
    assert titles[:3] == ["one-way latency (log scale)", "arrivals per second", "unreliable channels: messages lost"]
    assert any(t.startswith("health") for t in titles)
    for chart in charts:
        assert chart["traces"] > 0 and chart["points"] > 0 and chart["height"] > 200, chart
    latency, arrivals = charts[0], charts[1]
    assert latency["bands"] == arrivals["bands"] == 2  # the drop (a line) and the outage (a band)
    delivered = sum(len(e.get("channels", {"main": e})) for e in opened["report"]["transports"].values())
    assert latency["traces"] >= delivered  # a latency trace per channel (plus markers and bursts)


@pytest.mark.asyncio(loop_scope="module")
async def test_the_tables_show_the_final_and_recovery_figures(opened: dict[str, Any]) -> None:
    page = opened["page"]
    rows = await page.evaluate("() => [...document.querySelectorAll('table')].map(t => t.rows.length)")
    report = opened["report"]
    channels = sum(len(e.get("channels", {"main": e})) for e in report["transports"].values())
    assert rows[0] == channels + 1 and rows[1] == len(report["faults"]) + 1
    ws = await page.evaluate(
        "() => [...document.querySelectorAll('table')[0].rows].find(r => r.cells[0].textContent === 'ws')"
        ".cells[2].textContent"
    )
    assert int(ws) == report["transports"]["ws"]["delivered"]
    shot = await page.screenshot(full_page=False)
    assert len(shot) > 20_000  # a drawn page, not a blank one
    assert "lost to reset" in await page.inner_text("dl.legend")
