"""``rtplay run --browser``: the browser's transports in the JSON report, with rtplay's fields,
and per fault both decisions side by side."""

from __future__ import annotations

import io

import pytest

from rtplay.model.faultspec import parse_fault
from rtplay.cli.headless import HeadlessOptions, run_headless
from rtplay.protocol.options import ServerOptions
from rtplay.engine.session import SessionConfig
from tests.browser.conftest import MISSING

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium and Playwright: {MISSING}"),
]


async def test_run_with_browser_reports_the_page_beside_rtplay() -> None:
    out = io.StringIO()
    options = HeadlessOptions(duration=4.0, progress=False, browser=True, settle_s=5.0, out=out)
    config = SessionConfig(transports=["sse", "ws"], server=ServerOptions(rate=20))
    report = await run_headless(config, options, [parse_fault("drop@2")])
    browser = report["browser"]
    assert set(browser["transports"]) == {"poll", "longpoll", "sse", "ws", "wt", "rtc"}
    for name in ("sse", "ws"):
        ours, theirs = report["transports"][name], browser["transports"][name]
        # The page counts neither wire bytes nor cuts for being too slow (it gets no reason).
        assert set(ours) - {"wire_bytes_per_msg", "cut_too_slow"} <= set(theirs), (ours, theirs)
        assert theirs["state"] == "open" and theirs["lost"] == 0 and theirs["reconnects"] >= 1
        assert theirs["delivered"] == report["published"]
    rows = {(f["fault"], f["transport"]) for f in browser["faults"]}
    assert rows == {("drop on all", "sse"), ("drop on all", "ws")}
    text = out.getvalue()
    assert "the browser (headless Chromium on the page)" in text and "rtplay client vs browser" in text
