"""``rtplay --browser``: the playground shows the browser's rows beside rtplay's panes."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from rtplay.engine.browser import LAUNCH_TIMEOUT_S
from rtplay.tui.app import RtplayApp
from rtplay.tui.browser_rows import BrowserRows
from tests.browser.conftest import MISSING
from tests.tui.helpers import make_config, pane_status, wait_for

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium and Playwright: {MISSING}"),
]


def rows_text(app: RtplayApp) -> str:
    rows = app.browser_rows
    if rows is None or rows.table is None:
        return ""
    console = Console(width=140, record=True, file=io.StringIO())
    console.print(rows.table)
    return console.export_text()


async def test_browser_rows_show_beside_the_panes_and_stop_from_the_palette_action() -> None:
    app = RtplayApp(make_config(["ws"]), browser=True)
    async with app.run_test(size=(140, 45)) as pilot:
        session = app.backend.session  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "rtplay's ws open")
        await session.set_rate(20)  # through the control API, once the session has reached the server
        await wait_for(pilot, lambda: rows_text(app).count("open") >= 6, "six browser rows open", timeout=30)
        assert isinstance(app.query_one("#browser-rows"), BrowserRows)
        text = rows_text(app)
        for transport in ("poll", "longpoll", "sse", "ws", "wt", "rtc"):
            assert transport in text
        await app.toggle_browser()  # the palette's "Browser: start / stop"
        assert app.browser_rows is None and not app.query("#browser-rows")


async def test_g_restarts_the_browsers_failed_sse_row_too() -> None:
    """The browser's EventSource gives up on a 503 (as the spec says); `g` starts it again,
    as the page's retry button does, once the error is cleared."""
    from rtplay.protocol.faults import Kind

    app = RtplayApp(make_config(["sse"]), browser=True)
    async with app.run_test(size=(140, 45)) as pilot:
        session = app.backend.session  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: pane_status(app, "sse").startswith("● open"), "rtplay's sse open")
        await session.set_rate(20)
        # Chromium's launch and first page load: the driver's own allowance, as the test above
        # (10 s was less than a page reloaded once after PAGE_READY_S, under suite load).
        await wait_for(pilot, lambda: "sse" in rows_text(app) and rows_text(app).count("open") >= 1, "browser rows",
                       timeout=LAUNCH_TIMEOUT_S)
        page = app.browser_rows.side.driver.page  # type: ignore[union-attr]
        state = "() => window.rtplay.clients.sse.state"
        fault = await session.faults.add(Kind.ERROR, "sse", 503)
        await session.drop("sse")
        await wait_for(pilot, lambda: pane_status(app, "sse").startswith("✖"), "rtplay's sse failed", timeout=20)
        for _ in range(200):  # the page's own state, read through its driver
            if await page.evaluate(state) == "failed":
                break
            await pilot.pause(0.05)
        assert await page.evaluate(state) == "failed"
        await session.faults.clear(fault.id)
        await pilot.press("g")
        for _ in range(200):
            if await page.evaluate(state) == "open":
                break
            await pilot.pause(0.05)
        assert await page.evaluate(state) == "open"
        await wait_for(pilot, lambda: pane_status(app, "sse").startswith("● open"), "rtplay's sse open again")
