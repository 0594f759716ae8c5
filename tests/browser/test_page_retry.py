"""The page retries on rtplay's schedule (issue 23 item 3): in real Chromium, its policies are
rtplay's, their waits are rtplay's to the last bit for the same seed, and it runs what the
address it was opened with says."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from rtplay.clients import CLIENT_CLASSES
from rtplay.clients.core import ReconnectingClient
from rtplay.clients.poll import DEFAULT_INTERVAL_S
from rtplay.engine.browser import BrowserDriver, page_query
from rtplay.model.draws import PortableRandom, stream_seed
from rtplay.model.retry_spec import parse_policy
from rtplay.protocol.faults import Kind
from servers.runner import Server
from tests.browser.conftest import MISSING, serving_the_page, wait_page

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60),
              pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium and Playwright: {MISSING}")]

SEED = 7

#: What the page is opened with: one policy of each kind the grammar has.
POLICIES = {
    "poll": "fixed:1",
    "longpoll": "fixed:10",
    "ws": "exponential:jitter=decorrelated,base=0.5,cap=8,factor=2",
    "wt": "socketio",
    "rtc": "exponential:jitter=full,base=1,cap=30,factor=2",
}

#: Every policy text the comparison runs, canonical as rtplay writes it.
COMPARED = ["socketio", "immediate", "eventsource", "fixed:2.5",
            *(str(parse_policy(f"exponential:jitter={j},base=0.3,cap=7,factor=1.5"))
              for j in ("none", "full", "equal", "decorrelated"))]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def opened() -> AsyncIterator[tuple[Server, BrowserDriver]]:
    """A server at 50 msg/s and Chromium on its page, opened as ``--browser`` opens it."""
    async with serving_the_page(page_query(POLICIES, SEED)) as site:
        yield site


def rtplay_waits(text: str, transport: str, seed: int = SEED) -> list[float]:
    """Six decisions of rtplay's policy on the transport's seeded stream, reset after four."""
    policy = parse_policy(text).build(PortableRandom(stream_seed(str(seed), transport)))
    waits = [policy.next_delay() for _ in range(4)]
    policy.reset()
    return waits + [policy.next_delay() for _ in range(2)]


PAGE_WAITS = """([text, transport, seed]) => {
    const policy = policyFor({seed: String(seed), policies: {[transport]: text}}, transport);
    const waits = [0, 1, 2, 3].map(() => policy.nextDelay());
    policy.reset();
    return waits.concat([policy.nextDelay(), policy.nextDelay()]);
}"""


async def test_the_page_decides_rtplays_waits_bit_for_bit(opened: tuple[Server, BrowserDriver]) -> None:
    _, driver = opened
    for transport in ("ws", "wt", "rtc"):
        draws = await driver.page.evaluate(
            "([s, t]) => { const r = new PortableRandom(streamSeed(s, t)); return [0, 1, 2, 3, 4].map(() => r.random()); }",
            [str(SEED), transport])
        rng = PortableRandom(stream_seed(str(SEED), transport))
        assert draws == [rng.random() for _ in range(5)], transport
        for text in COMPARED:
            page = await driver.page.evaluate(PAGE_WAITS, [text, transport, SEED])
            assert page == rtplay_waits(text, transport), (text, transport)


async def test_the_page_runs_the_policies_and_seed_it_was_opened_with(opened: tuple[Server, BrowserDriver]) -> None:
    _, driver = opened
    settings = await driver.page.evaluate("window.rtplay.retry")
    assert settings == {"seed": str(SEED), "policies": POLICIES}
    # The page builds its clients' policies once its config has come (/page/config).
    await driver.page.wait_for_function(f"Object.keys(window.rtplay.policies).length >= {len(POLICIES)}")
    described = await driver.page.evaluate(
        "Object.fromEntries(Object.entries(window.rtplay.policies).map(([n, p]) => [n, p.describe()]))")
    assert described == {name: parse_policy(text).build().describe() for name, text in POLICIES.items()}


async def test_a_page_opened_without_settings_runs_rtplays_defaults(opened: tuple[Server, BrowserDriver]) -> None:
    _, driver = opened
    defaults = await driver.page.evaluate("retrySettings('')")
    expected: dict[str, Any] = {
        name: str(parse_policy(cls.default_policy))
        for name, cls in CLIENT_CLASSES.items() if issubclass(cls, ReconnectingClient) and name != "sse"
    }
    expected["poll"] = f"fixed:{DEFAULT_INTERVAL_S:g}"  # rtplay's poll keeps polling on its interval
    assert defaults == {"seed": None, "policies": expected}


async def test_after_a_drop_the_page_waits_what_rtplays_client_would(opened: tuple[Server, BrowserDriver]) -> None:
    server, driver = opened
    await wait_page(driver, lambda c: c.get("ws", {}).get("state") == "open", "ws open")
    server.add_fault(Kind.DROP, "ws")
    clients = await wait_page(driver, lambda c: any("next attempt in" in line for line in c["ws"]["log"]),
                              "the ws client's retry decision")
    line = next(line for line in clients["ws"]["log"] if "next attempt in" in line)
    first = rtplay_waits(POLICIES["ws"], "ws")[0]  # the page's first failure: the stream's first draw
    assert f"next attempt in {first:.2f} s (exp decorrelated 0.5s×2≤8s)" in line, (line, first)


async def test_a_longer_retry_after_wins_over_the_policy(opened: tuple[Server, BrowserDriver]) -> None:
    server, driver = opened
    fault = server.add_fault(Kind.ERROR, "poll", 503)  # answered with Retry-After: 2
    try:
        await wait_page(driver, lambda c: any("next attempt in 2.00 s (Retry-After)" in line for line in c["poll"]["log"]),
                        "the poll client to wait the server's 2 s, not its policy's 1 s")
    finally:
        server.clear_faults(fault.id)
