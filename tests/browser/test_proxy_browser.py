"""Real Chromium through the proxy: EventSource resumes after a drop with the id the proxy
reports, a WebSocket close code reaches the browser unchanged, and a delay is what the page
measures."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from rtplay.engine.browser import BASE_FLAGS, BrowserUnavailable, chromium_path
from rtplay.proxy.proxy import FaultProxy
from tests.conftest import stalls
from tests.proxy.upstreams import SseApp, sse_upstream, ws_upstream

try:
    from playwright.async_api import async_playwright

    chromium_path()
    MISSING = None
except (ImportError, BrowserUnavailable) as exc:
    MISSING = str(exc) or "playwright is not installed"

pytestmark = [
    pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium and Playwright: {MISSING}"),
    pytest.mark.asyncio(loop_scope="module"),  # one Chromium for the module
]

#: The page's EventSource log: [lastEventId, receive time (epoch ms), upstream send time].
LISTEN_SSE = """() => {
  window.got = []; window.errors = []; window.es = new EventSource('/events');
  es.onmessage = e => got.push([e.lastEventId, performance.timeOrigin + performance.now(), JSON.parse(e.data).t]);
  es.onerror = () => errors.push(got.length ? got[got.length - 1][0] : null);
}"""


async def wait_page(page: Any, expression: str, what: str, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await page.evaluate(expression)
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Any]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path(), args=list(BASE_FLAGS))
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Any) -> AsyncIterator[Any]:
    """A fresh page in the module's Chromium, closed after the test."""
    page = await browser.new_page()
    try:
        yield page
    finally:
        await page.close()


@pytest_asyncio.fixture(loop_scope="module")
async def sse_proxy() -> AsyncIterator[tuple[FaultProxy, SseApp]]:
    async with sse_upstream(SseApp(interval=0.05, retry_ms=200)) as (url, app):
        proxy = FaultProxy("app", url, seed=0)
        await proxy.start()
        try:
            yield proxy, app
        finally:
            await proxy.stop()


async def test_after_a_drop_eventsource_resumes_with_last_event_id_and_the_proxy_reports_it(
    page: Any, sse_proxy: tuple[FaultProxy, SseApp]
) -> None:
    proxy, app = sse_proxy
    await page.goto(proxy.url + "/page")
    await page.evaluate(LISTEN_SSE)
    await wait_page(page, "got.length >= 5", "five events")
    proxy.toxics.remove(proxy.add_fault("drop:sse").name)
    await wait_page(page, "errors.length >= 1", "the drop")
    last_before = (await page.evaluate("errors"))[0]
    await wait_page(page, f"got.length && got[got.length - 1][0] > {last_before} + 2", "events after the reconnect")
    assert app.asked[:2] == [None, last_before]  # the upstream saw the browser resume
    decisions = next(c for c in proxy.wire_json()["clients"] if c["path"] == "/events")["decisions"]
    assert decisions[1]["resume_from"] == last_before  # and the proxy reports it
    # The browser waited its reconnection time (retry: 200) from the close, as the proxy saw.
    assert 0.15 <= decisions[1]["after_close_s"] < 2.0
    ids = [int(e[0]) for e in await page.evaluate("got")]
    assert ids == list(range(1, ids[-1] + 1))  # nothing lost, nothing twice


async def test_a_websocket_close_code_from_the_upstream_reaches_the_browser_unchanged(page: Any) -> None:
    async with sse_upstream() as (page_url, _), ws_upstream() as ws_url:
        site, sockets = FaultProxy("page", page_url), FaultProxy("ws", ws_url)
        await site.start()
        await sockets.start()
        try:
            await page.goto(site.url + "/page")
            await page.evaluate(
                f"() => {{ window.ws = new WebSocket('ws://{sockets.listen}/close4001');"
                " ws.onclose = e => window.wsClose = [e.code, e.reason, e.wasClean]; }"
            )
            closed = await wait_page(page, "window.wsClose", "the close")
            assert closed == [4001, "bye from upstream", True]
        finally:
            await sockets.stop()
            await site.stop()


async def per_event_latency(page: Any, count: int, after: int) -> list[float]:
    got = await wait_page(page, f"got.length >= {after + count} && got", f"{count} events")
    return [recv - sent for _, recv, sent in got[after : after + count]]


async def test_a_300ms_delay_on_sse_is_what_the_browser_measures(
    page: Any, sse_proxy: tuple[FaultProxy, SseApp]
) -> None:
    proxy, _ = sse_proxy
    await page.goto(proxy.url + "/page")
    await page.evaluate(LISTEN_SSE)
    baseline = statistics.median(await per_event_latency(page, 10, 2))
    async with stalls() as meter:  # the proxy holds each event on this loop: its stalls add to it
        proxy.add_fault("delay=300ms:sse")
        start = await page.evaluate("got.length") + 8  # events queued before the fault go first
        got = await wait_page(page, f"got.length >= {start + 20} && got", "20 events")
    epoch_to_monotonic = time.monotonic() - time.time()
    added, late_ok = [], []
    for _, recv, sent in got[start : start + 20]:
        held_from = sent / 1000 + epoch_to_monotonic
        lost_ms = 1000 * meter.within(held_from, held_from + 0.5)  # this loop stalled while it held it
        added.append(recv - sent - baseline)
        late_ok.append(280 <= added[-1] <= 340 + lost_ms)
    assert 280 <= statistics.median(added), added
    assert sum(late_ok) >= 0.8 * len(added), (added, meter.samples)
