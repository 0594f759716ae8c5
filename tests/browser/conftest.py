"""One server and one headless Chromium (Playwright on the system browser) per module."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from rtplay.engine.browser import BrowserDriver, BrowserUnavailable, chromium_path
from servers.core.context import HttpConfig
from servers.runner import Server, ServerConfig

try:
    import playwright  # noqa: F401

    chromium_path()
    MISSING = None
except (ImportError, BrowserUnavailable) as exc:
    MISSING = str(exc) or "playwright is not installed"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def site() -> AsyncIterator[tuple[Server, BrowserDriver]]:
    """A server publishing 50 msg/s and Chromium showing its page, for the whole module."""
    if MISSING is not None:
        pytest.skip(f"needs Chromium and Playwright: {MISSING}")
    async with serving_the_page() as opened:
        yield opened


@contextlib.asynccontextmanager
async def serving_the_page(query: str = "") -> AsyncIterator[tuple[Server, BrowserDriver]]:
    """A server at 50 msg/s and Chromium on its page (opened with ``query``), both stopped after."""
    server = Server(ServerConfig(rate=50, http=HttpConfig(sse_retry_ms=300)))
    await server.start()
    driver = BrowserDriver(server.http_url, server.quic_port, query)
    try:
        await driver.start()
        yield server, driver
    finally:
        await driver.stop()
        await server.rtc.close_all()
        await server.stop()


async def snapshot(driver: BrowserDriver) -> dict[str, Any]:
    """The page's clients, as it would report them."""
    return (await driver.page.evaluate("window.rtplay.snapshot()"))["clients"]


async def wait_page(
    driver: BrowserDriver, predicate: Callable[[dict[str, Any]], bool], what: str, timeout: float = 20.0
) -> dict[str, Any]:
    """Read the page until ``predicate(clients)`` holds; fail with what it last said."""
    clients: dict[str, Any] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        clients = await snapshot(driver)
        if clients and predicate(clients):
            return clients
        await asyncio.sleep(0.1)
    summary = {n: (c["state"], {k: v["highest"] for k, v in c["channels"].items()}, c["log"][-2:]) for n, c in clients.items()}
    raise AssertionError(f"timed out waiting for {what}; page says: {summary}")


def highest(clients: dict[str, Any], transport: str, channel: str | None = None) -> int:
    channels = clients[transport]["channels"]
    return channels[channel or next(iter(channels))]["highest"]
