"""Issue 23 in real Chromium: a page opened late starts from now, a crash leaves no uncaught
error, the log shows whole numbered lines, the panels chart, and what a page of the user's
own needs (secure-context notice, Retry-After) is there."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from rtplay.engine.browser import BrowserDriver, chromium_path
from rtplay.protocol.faults import Kind
from servers.core.context import HttpConfig
from servers.runner import Server, ServerConfig
from tests.browser.conftest import MISSING, wait_page

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60),
              pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium and Playwright: {MISSING}")]

TRANSPORTS = ("poll", "longpoll", "sse", "ws", "wt", "rtc")

#: Messages published before the page opens: ten times the replay buffer below.
BEFORE = 1000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def late() -> AsyncIterator[tuple[Server, BrowserDriver, list[str]]]:
    """A server that published :data:`BEFORE` messages (a 100-message buffer) before Chromium
    opened its page; then 50 msg/s. Yields the page's uncaught errors too."""
    server = Server(ServerConfig(rate=0, replay_capacity=100, http=HttpConfig(sse_retry_ms=300)))
    await server.start()
    for _ in range(BEFORE):
        server.hub.publish(time.time() * 1000)
    server.set_rate(50)
    driver = BrowserDriver(server.http_url, server.quic_port)
    errors: list[str] = []
    try:
        await driver.start()
        driver.page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield server, driver, errors
    finally:
        await driver.stop()
        await server.rtc.close_all()
        await server.stop()


def all_open_beyond(seq: int) -> Any:
    return lambda c: all(t in c and c[t]["state"] == "open"
                         and all(ch["highest"] > seq for ch in c[t]["channels"].values()) for t in TRANSPORTS)


async def test_a_page_opened_late_starts_from_now_with_nothing_reset(late) -> None:  # type: ignore[no-untyped-def]
    _, driver, _ = late
    def p50_known(clients: dict) -> bool:  # type: ignore[type-arg]  # the page summarises its latencies now and then
        return all(c["channels"][next(iter(c["channels"]))]["latency_ms"]["p50"] is not None for c in clients.values())

    clients = await wait_page(driver, lambda c: all_open_beyond(BEFORE + 25)(c) and p50_known(c),
                              "every client 25 messages in, its latency summarised")
    for name, client in clients.items():
        for channel, stats in client["channels"].items():
            # A new subscriber: no replay of what came before it, so no reset and no backlog latency.
            assert stats["lost_to_reset"] == 0, (name, channel, stats, client["log"])
            assert stats["delivered"] <= stats["highest"] - BEFORE, (name, channel, stats)
        assert client["channels"][next(iter(client["channels"]))]["latency_ms"]["p50"] < 1000, (name, client)


async def test_a_crash_leaves_no_uncaught_error_and_the_charts_mark_it(late) -> None:  # type: ignore[no-untyped-def]
    server, driver, errors = late
    await wait_page(driver, all_open_beyond(server.hub.last_seq), "every client open")
    before = (await driver.page.evaluate("window.rtplay.clients.rtc.connects"))
    server.add_fault(Kind.CRASH, "all", 2.0, duration=2.0)
    at = server.hub.last_seq
    await wait_page(driver, lambda c: c["rtc"]["connects"] > before and all_open_beyond(at + 10)(c),
                    "every client back after the crash", timeout=40)
    # Failed WebRTC attempts during the crash closed their own channels: no uncaught rejection
    # (it used to read "server closed the reliable channel", three times per crash).
    assert errors == []
    log = await driver.page.evaluate("window.rtplay.clients.rtc.log")
    assert not any("server closed" in line for line in log), log
    # The chart draws the down period as a band and the reconnect as a line (from the marks).
    marks = await driver.page.evaluate("window.rtplay.clients.rtc.marks.map((m) => m[1])")
    assert "down" in marks and marks[-1] == "up", marks
    drawn = await driver.page.evaluate("""() => [...document.querySelectorAll('section .uplot canvas')]
        .map((c) => c.width > 0 && c.height > 0).filter(Boolean).length""")
    assert drawn == len(TRANSPORTS)


async def test_the_log_shows_whole_lines_with_every_digit_of_their_number(late) -> None:  # type: ignore[no-untyped-def]
    _, driver, _ = late
    for _ in range(12):  # twelve more lines in the poll panel's log
        await driver.page.evaluate("window.rtplay.clients.poll.note('a line')")
    await driver.page.wait_for_timeout(300)  # the panels repaint every 200 ms
    box = await driver.page.evaluate("""() => {
        const ol = document.querySelector('#panel-poll ol.log');
        const r = ol.getBoundingClientRect(), li = ol.querySelector('li').getBoundingClientRect().height;
        const numbers = [...ol.querySelectorAll('li .n')];
        return {height: ol.clientHeight, scroll: ol.scrollTop, li,
                numbers: numbers.map((n) => n.textContent),
                inside: numbers.every((n) => n.getBoundingClientRect().left >= r.left)};
    }""")
    assert box["numbers"] and all(n.rstrip(".").isdigit() for n in box["numbers"]), box
    assert any(len(n) >= 3 for n in box["numbers"]) and box["inside"], box  # "12." keeps its "1"
    # Whole lines only: the box is a whole number of lines tall, scrolled by whole lines.
    assert abs(box["height"] / box["li"] - round(box["height"] / box["li"])) < 0.01, box
    assert abs(box["scroll"] / box["li"] - round(box["scroll"] / box["li"])) < 0.01, box


async def test_the_page_shows_a_503s_retry_after(late) -> None:  # type: ignore[no-untyped-def]
    server, driver, _ = late
    fault = server.add_fault(Kind.ERROR, "poll", 503)
    try:
        await wait_page(driver, lambda c: any("Retry-After 2 s" in line for line in c["poll"]["log"]),
                        "the poll client to read Retry-After")
    finally:
        server.clear_faults(fault.id)


async def test_a_page_opened_from_a_non_secure_origin_says_why_webtransport_is_missing(late) -> None:  # type: ignore[no-untyped-def]
    server, _, _ = late
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        # A name that is not localhost: http://rtplay.test is not a secure context.
        browser = await pw.chromium.launch(executable_path=chromium_path(), headless=True,
                                           args=["--no-sandbox", "--host-resolver-rules=MAP rtplay.test 127.0.0.1"])
        try:
            page = await browser.new_page()
            await page.goto(f"http://rtplay.test:{server.http_port}/")
            panel = page.locator("#panel-wt")
            await panel.wait_for(timeout=10_000)
            assert "secure context" in await panel.inner_text()
        finally:
            await browser.close()
