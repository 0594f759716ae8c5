"""The page's clients in a real headless Chromium: every transport a browser has.

This is the check that the server speaks what browsers speak, and that rtplay's clients
model a browser faithfully: EventSource resumes with Last-Event-ID after a drop and gives up
for good on a 503, exactly as ``rtplay.clients.sse`` does; the others resume with the page's
logic from their cursor.
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

import pytest

from rtplay.clients.sse import SSEClient
from rtplay.model.events import State
from rtplay.protocol.faults import Kind
from tests.browser.conftest import highest, snapshot, wait_page
from tests.conftest import running, wait_until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

TRANSPORTS = ("poll", "longpoll", "sse", "ws", "wt", "rtc")


def all_open_beyond(seq: int) -> Any:
    def check(clients: dict[str, Any]) -> bool:
        return all(
            t in clients and clients[t]["state"] == "open"
            and all(ch["highest"] > seq for ch in clients[t]["channels"].values())
            for t in TRANSPORTS
        )
    return check


def nothing_lost(clients: dict[str, Any]) -> None:
    """Every transport's resumable channel has everything once; the live-only ones (wt
    datagrams, rtc unreliable) may lose by contract (a starved renderer drops datagrams)."""
    for name, client in clients.items():
        (channel, stats), *live_only = client["channels"].items()
        counts = (stats["missing"], stats["duplicates"], stats["lost_to_reset"])
        assert counts == (0, 0, 0), (name, channel, stats, client["log"])
        for channel, stats in live_only:
            assert stats["delivered"] > 0 and stats["duplicates"] == 0, (name, channel, stats)


async def test_every_transport_receives_with_nothing_lost(site) -> None:  # type: ignore[no-untyped-def]
    server, driver = site
    start = server.hub.last_seq
    clients = await wait_page(driver, all_open_beyond(start + 25), "every browser client to receive 25 more")
    assert set(clients) == set(TRANSPORTS)
    nothing_lost(clients)


async def test_after_a_drop_each_resumes_with_nothing_lost(site) -> None:  # type: ignore[no-untyped-def]
    server, driver = site
    await wait_page(driver, all_open_beyond(server.hub.last_seq), "every browser client open")
    before = {name: client["connects"] for name, client in (await snapshot(driver)).items()}
    dropped = server.drop()
    assert dropped >= 4
    at_drop = server.hub.last_seq
    # Poll and long-poll (at 50 msg/s, answered at once) hold no connection between requests.
    reconnected = lambda c: all(c[t]["connects"] > before[t] for t in ("sse", "ws", "wt", "rtc"))  # noqa: E731
    clients = await wait_page(driver, lambda c: reconnected(c) and all_open_beyond(at_drop + 25)(c),
                              "every browser client to reconnect and go on")
    for name in ("poll", "longpoll", "sse", "ws"):
        assert clients[name]["channels"]["main"]["missing"] == 0, clients[name]
    # Reliable channels resume from their cursor; live-only ones skip what was sent while away.
    for name, channel in (("wt", "stream"), ("rtc", "reliable")):
        stats = clients[name]["channels"][channel]
        assert (stats["missing"], stats["duplicates"]) == (0, 0), (name, stats, clients[name]["log"])


async def test_delay_on_wt_adds_300ms_to_each_message_on_both_channels(site) -> None:  # type: ignore[no-untyped-def]
    server, driver = site
    await wait_page(driver, all_open_beyond(server.hub.last_seq), "every browser client open")
    opened = server.hub.last_seq
    await wait_page(driver, lambda c: highest(c, "wt", "stream") >= opened + 20
                    and highest(c, "wt", "datagram") >= opened + 20, "20 messages on wt without the fault")
    own = {}  # each channel's own latency in this browser, this run, before the fault
    for channel in ("stream", "datagram"):
        recent = await driver.page.evaluate(f"window.rtplay.clients.wt.channels.{channel}.recent")
        own[channel] = statistics.median(ms for seq, ms in recent if seq > opened)
    fault = server.add_fault(Kind.DELAY, "wt", 300)
    try:
        first = server.hub.last_seq + 1  # published after the fault started
        await wait_page(driver, lambda c: highest(c, "wt", "stream") >= first + 20
                        and highest(c, "wt", "datagram") >= first + 20, "20 delayed messages on wt")
        for channel in ("stream", "datagram"):
            recent = await driver.page.evaluate(f"window.rtplay.clients.wt.channels.{channel}.recent")
            late = [ms for seq, ms in recent if seq >= first]
            assert len(late) >= 15, (channel, recent)
            # Never early (a batch released at its first message's time was up to 280 ms early,
            # median 182 ms late), whatever the load.
            assert min(late) >= 280, (channel, sorted(late)[:3])
            # Late only by scheduling: the median within 20 ms of +300 on top of the channel's
            # own median measured before the fault (a loaded machine slows both alike).
            median = statistics.median(late)
            assert median - 300 <= own[channel] + 20, (channel, median, own[channel], sorted(late)[-3:])
    finally:
        server.clear_faults(fault.id)


async def test_after_503_on_sse_the_browser_and_rtplay_both_end_failed(site) -> None:  # type: ignore[no-untyped-def]
    server, driver = site
    client = SSEClient(server.http_url)
    async with running(client):
        await wait_until(lambda: client.state is State.OPEN, 10, "rtplay's SSE client open")
        await wait_page(driver, lambda c: c["sse"]["state"] == "open", "the browser's EventSource open")
        server.add_fault(Kind.ERROR, "sse", 503)
        server.drop("sse")
        clients = await wait_page(driver, lambda c: c["sse"]["state"] == "failed", "the EventSource to give up")
        await wait_until(lambda: client.state is State.FAILED, 10, "rtplay's SSE client to give up")
        assert "gave up" in clients["sse"]["failed_reason"]
        await asyncio.sleep(1.0)  # a client that retried would be open again by now (retry: 300 ms)
        assert (await snapshot(driver))["sse"]["state"] == "failed"
        assert client.state is State.FAILED
        assert server.ctx.registry.count("sse") == 0
