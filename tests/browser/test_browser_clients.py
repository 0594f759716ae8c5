"""A real browser's EventSource and WebSocket against the server (headless Chromium over CDP).

This is the check that the server speaks what browsers speak — and that rtplay's SSE client
models a browser faithfully: the browser resumes with Last-Event-ID after a drop, and
gives up for good on a 503, exactly as ``rtplay.clients.sse`` does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from websockets.asyncio.client import connect

from rtplay.protocol.faults import Kind
from servers.http import HttpConfig
from servers.runner import Server, ServerConfig

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (.ci/run installs Debian's chromium)"),
    pytest.mark.timeout(60),
]

#: Flags that keep a headless Chromium quiet and on loopback: no background requests.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
)


class Page:
    """Evaluates JavaScript in one page over the Chrome DevTools Protocol."""

    def __init__(self, ws) -> None:  # type: ignore[no-untyped-def]
        self.ws = ws
        self.ids = itertools.count(1)

    async def title(self) -> str:
        call_id = next(self.ids)
        await self.ws.send(json.dumps({"id": call_id, "method": "Runtime.evaluate", "params": {"expression": "document.title"}}))
        while True:
            reply = json.loads(await self.ws.recv())
            if reply.get("id") == call_id:
                return reply["result"]["result"]["value"]


@asynccontextmanager
async def browser_on(url: str) -> AsyncIterator[Page]:
    with tempfile.TemporaryDirectory() as profile:
        proc = await asyncio.create_subprocess_exec(
            CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url,  # type: ignore[arg-type]
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        try:
            devtools = ""
            while "DevTools listening on" not in devtools:
                line = await asyncio.wait_for(proc.stderr.readline(), 20)  # type: ignore[union-attr]
                assert line, "chromium exited before DevTools came up"
                devtools = line.decode()
            port = re.search(r"ws://127\.0\.0\.1:(\d+)/", devtools).group(1)  # type: ignore[union-attr]
            async with httpx.AsyncClient(trust_env=False) as http:
                targets = (await http.get(f"http://127.0.0.1:{port}/json/list")).json()
            page_ws = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            async with connect(page_ws, max_size=None, proxy=None) as ws:
                yield Page(ws)
        finally:
            proc.kill()
            await proc.wait()


def parse(title: str) -> dict[str, dict[str, str]]:
    """The page's title, ``sse open delivered=12 last=12 …; ws …``, as {transport: {key: value}}."""
    rows: dict[str, dict[str, str]] = {}
    for part in filter(None, title.split("; ")):
        name, state, *pairs = part.split()
        rows[name] = {"state": state} | dict(pair.split("=", 1) for pair in pairs)
    return rows


def count(title: str, transport: str, key: str) -> int:
    return int(parse(title).get(transport, {}).get(key, -1))


def state(title: str, transport: str) -> str | None:
    return parse(title).get(transport, {}).get("state")


async def wait_title(page: Page, predicate, what: str) -> str:  # type: ignore[no-untyped-def]
    latest = [""]

    async def poll() -> None:
        while not predicate(latest[0]):
            latest[0] = await page.title()
            await asyncio.sleep(0.1)

    try:
        await asyncio.wait_for(poll(), 20)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}; page says: {latest[0]}") from None
    return latest[0]


async def test_browser_eventsource_resumes_after_a_drop_and_fails_on_503() -> None:
    server = Server(ServerConfig(rate=50, http=HttpConfig(sse_retry_ms=300)))
    await server.start()
    try:
        async with browser_on(server.http_url + "/") as page:
            await wait_title(page, lambda t: count(t, "sse", "delivered") >= 20 and count(t, "ws", "delivered") >= 20,
                             "20 messages on the browser's EventSource and WebSocket")
            server.drop()
            title = await wait_title(
                page,
                lambda t: count(t, "sse", "reconnects") >= 1 and count(t, "ws", "reconnects") >= 1
                and count(t, "sse", "delivered") >= 60 and count(t, "ws", "delivered") >= 60,
                "both to reconnect and deliver more",
            )
            # Last-Event-ID (sse) and since (ws) resume: no gap, no duplicate in the browser.
            for transport in ("sse", "ws"):
                assert count(title, transport, "gaps") == 0 and count(title, transport, "dup") == 0, title
            server.add_fault(Kind.ERROR, "sse", 503)
            server.drop("sse")
            title = await wait_title(page, lambda t: state(t, "sse") == "failed", "the EventSource to give up")
            await asyncio.sleep(1.0)  # a browser that retried would be open again by now
            assert state(await page.title(), "sse") == "failed"
            assert server.ctx.registry.count("sse") == 0
    finally:
        await server.stop()
