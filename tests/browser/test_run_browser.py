"""``rtplay run --browser``: the browser's transports in the JSON report, with rtplay's fields,
and per fault both decisions side by side."""

from __future__ import annotations

import io
from typing import Any

import pytest

from rtplay.cli.headless import HeadlessOptions, run_headless
from rtplay.engine.browser import side_by_side
from rtplay.engine.session import SessionConfig
from rtplay.model.faultspec import parse_fault
from rtplay.protocol.options import ServerOptions
from tests.browser.conftest import MISSING

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(MISSING is not None, reason=f"needs Chromium and Playwright: {MISSING}"),
]


#: The publish rate of the runs that compare losses (msg/s).
RATE = 50


def late_s(report: dict[str, Any]) -> float:
    """How late rtplay's loops were at worst in this run (its health figures), in seconds:
    every timer of its clients and server fired up to that late."""
    health = report["health"]
    return float(health["client_loop_lag_ms"]["max"] + health["server_loop_lag_ms"]["max"]) / 1000


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


async def test_browser_figures_follow_rtplays_model_and_faults_own_their_events() -> None:
    """Issue 23 items 2, 3, 4 and 8 in one run: publishing waited for the page (it starts at
    seq 0 and has all of it); an EventSource that gave up loses its tail as rtplay's does; the
    503 row does not claim the later drop's down; the live-only channel is split up/down."""
    out = io.StringIO()
    options = HeadlessOptions(duration=5.0, progress=False, browser=True, settle_s=5.0, out=out)
    config = SessionConfig(transports=["sse", "ws", "wt"], server=ServerOptions(rate=RATE))
    faults = [parse_fault("error=503@1s:sse"), parse_fault("drop@2s:sse"), parse_fault("drop@3s:wt")]
    report = await run_headless(config, options, faults)
    browser = report["browser"]
    assert browser["start_seq"] == 0  # the page opened before publishing began
    ws = browser["transports"]["ws"]
    assert (ws["delivered"], ws["lost"], ws["pending"]) == (report["published"], 0, 0), ws
    ours, theirs = report["transports"]["sse"], browser["transports"]["sse"]
    assert ours["state"] == theirs["state"] == "failed"
    # Both gave up at the drop: the tail published until then is lost on both sides (it read 0).
    # Each gives up when its own reconnect, a second later, meets the 503: 20 % (0.2 s) apart
    # for the two timers and requests, plus what rtplay's loops were late in this run.
    allowed = 0.2 * ours["lost"] + RATE * late_s(report)
    assert theirs["lost"] > 0 and abs(theirs["lost"] - ours["lost"]) <= allowed, (ours["lost"], theirs["lost"], allowed)
    assert theirs["pending"] == 0
    rows = {(row["fault"].split(" on ")[0], row["transport"]): row for row in side_by_side(report)}
    assert rows[("error 503", "sse")]["browser"]["detect_s"] is None, rows  # the drop owns the down
    assert rows[("drop", "sse")]["browser"]["detect_s"] is not None, rows
    assert "noticed" not in rows[("drop", "sse")]["differs"], rows
    datagram = browser["transports"]["wt"]["channels"]["datagram"]
    assert {"lost_while_connected", "lost_while_down", "loss_rate"} <= set(datagram)
    assert datagram["lost_while_down"] > 0, datagram  # published while the dropped session was away


#: A seed whose socketio draws put wt's and rtc's attempts well clear of a 3 s crash's end
#: (wt: 2.12 s refused, 5.26 s back; rtc: 2.50 s refused, 5.19 s back), and far from where the
#: page's old schedule (250 ms doubling) came back (3.75 s).
CRASH_SEED = 416

#: How far apart the two losses may be in the crash test (see its docstring); on its own
#: schedule the page lost 40 % and more less.
LOADED_TOLERANCE = 0.10


async def test_under_a_crash_the_browsers_unreliable_loss_equals_rtplays() -> None:
    """Issue 23 item 3: the page retries on rtplay's schedule with rtplay's draws, so both are
    down equally long and their live-only channels lose the same; the page lost 3/5 of
    rtplay's on wt and 5/6 on rtc when each retried on its own schedule.

    Within 5 % on a quiet machine (the figure the closing notes measure); this test allows
    :data:`LOADED_TOLERANCE` because it runs beside the rest of the suite, where rtplay's WebRTC
    handshake (aiortc, in Python) takes up to ~0.2 s longer than Chromium's: 4.2 % more lost
    beside two CPU burners, on the same schedule. On top, what the run's own loops were late
    (its health figures: every retry timer fired up to that late), at the publish rate."""
    options = HeadlessOptions(duration=7.5, progress=False, browser=True, settle_s=5.0, out=io.StringIO())
    config = SessionConfig(transports=["longpoll", "wt", "rtc"], server=ServerOptions(rate=RATE), retry_seed=CRASH_SEED,
                           client_options={"longpoll": {"retry": "fixed:1"}})  # the page's too: no 10 s wait to settle
    report = await run_headless(config, options, [parse_fault("crash=3s@1s")])
    assert report["settings"]["retry_seed"] == CRASH_SEED
    browser = report["browser"]["transports"]
    for transport, channel in (("wt", "datagram"), ("rtc", "unreliable")):
        ours = report["transports"][transport]["channels"][channel]
        theirs = browser[transport]["channels"][channel]
        why = (transport, [row for row in report["faults"] if row["transport"] == transport],
               [row for row in report["browser"]["faults"] if row["transport"] == transport], report["health"])
        # Every listener is down 3 s at 50 msg/s: at least 150 published while no client could
        # be connected (wt lost 107 when its listener went down only after HTTP's wind-down).
        assert ours["lost"] >= 150, (ours, why)
        allowed = LOADED_TOLERANCE * ours["lost"] + RATE * late_s(report)
        assert abs(theirs["lost"] - ours["lost"]) <= allowed, (allowed, ours, theirs, why)
        # The same window: what was published while down is lost while down on both sides.
        assert theirs["lost_while_down"] >= ours["lost_while_down"] - allowed, (allowed, ours, theirs, why)

