"""The crowd view's text (pure) and the retry-policy key on a live playground."""

from __future__ import annotations

import pytest

from rtplay.clients.core import ReconnectingClient
from rtplay.model.crowd import CrowdRecorder, CrowdStats
from rtplay.model.events import Connected, Connecting
from rtplay.tui.app import RtplayApp
from rtplay.tui.crowd import crowd_text, resample, server_text, spark
from tests.tui.helpers import make_config, pane_status, wait_for

SIZE = (120, 40)


def test_a_sparkline_scales_to_its_peak_and_keeps_the_last_values() -> None:
    assert spark([0, 5, 10], 3) == " ▄█"
    assert spark([1, 2, 3, 0, 0], 2) == "  "
    assert resample([[0.1, 5.0], [0.3, 7.0]], 0.0, 0.4) == [0.0, 5.0, 0.0, 7.0, 0.0]


def test_the_crowd_block_names_policy_rates_and_states() -> None:
    recorder = CrowdRecorder(3)
    for i in range(3):
        recorder.on_event(i, Connecting("ws", 99.95, 1))
        recorder.on_event(i, Connected("ws", 99.96))
    stats = CrowdStats(3)
    stats.merge(0, recorder.drain(), 99.97)

    class FakeSlice:
        def __init__(self, state: str) -> None:
            self.state = state

        def report(self) -> dict[str, object]:
            return {"host": "10.0.0.2", "clients": 2, "state": self.state}

    class FakeCrowd:
        clients = 3
        policy = "exponential:full"
        slices = [FakeSlice("running"), FakeSlice("lost")]

    FakeCrowd.stats = stats  # type: ignore[attr-defined]
    load = {"accepts_per_s": [[99.9, 30.0]], "concurrent": [[99.9, 3]], "concurrent_now": 3, "loop_lag_ms": []}
    text = crowd_text("ws", FakeCrowd(), now=100.0, width=20)
    assert "3 clients  policy [b]exponential:full[/b]" in text
    assert "attempts/s     30" in text
    assert "open            3" in text and "retrying        0" in text
    assert "workers         1  on 10.0.0.2  [b red]1 lost mid-run: 2 clients counted apart[/]" in text
    assert "concurrent" not in text  # server-wide: shown once, not as if it were this transport's
    server = server_text(load, now=100.0, width=20)
    assert "every transport together" in server and "accepts/s      30" in server and "concurrent      3" in server
    FakeCrowd.policy = None  # type: ignore[assignment]
    assert "policy [b]socketio (the default)[/b]" in crowd_text("ws", FakeCrowd(), 100.0, 20, "socketio")


async def test_the_policy_key_cycles_the_selected_pane_and_the_pane_shows_it() -> None:
    app = RtplayApp(make_config(["ws"], ws={"retry": "socketio"}))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
        assert "retry exp 1s×2≤5s ±50%" in pane_status(app, "ws")
        await pilot.press("1", "b")
        await wait_for(pilot, lambda: "retry exp none 1s×2≤30s" in pane_status(app, "ws"), "next policy shown")
        client = app.backend.session.clients["ws"]  # type: ignore[attr-defined]
        assert isinstance(client, ReconnectingClient) and str(client.retry_spec).startswith("exponential:jitter=none")
        await pilot.press("w")  # no crowd in this session: a notice, no screen
        assert app.screen is app.main_screen


@pytest.mark.long
async def test_the_crowd_view_shows_a_live_crowd_and_switches_its_policy() -> None:
    from dataclasses import replace

    from rtplay.tui.crowd import CrowdScreen

    config = replace(make_config(["ws"]), crowd=4)
    app = RtplayApp(config)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
        await pilot.press("w")
        assert isinstance(app.screen, CrowdScreen)
        session = app.backend.session  # type: ignore[attr-defined]
        await wait_for(pilot, lambda: "ws" in session.crowds and session.crowds["ws"].stats.states()["open"] == 4, "crowd open", timeout=30)
        app.screen.refresh_text()
        assert "4 clients  policy socketio (the default)" in str(app.screen.query_one("#crowd-body").render())
        await pilot.press("b")
        next_policy = "exponential:jitter=none,base=1,cap=30,factor=2"
        await wait_for(pilot, lambda: session.crowds["ws"].policy == next_policy, "crowd on the next policy", timeout=30)
        await wait_for(pilot, lambda: session.crowds["ws"].stats.states()["open"] == 4, "new crowd open", timeout=30)
