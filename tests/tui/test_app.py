"""The playground driven from the keyboard, against a real session on 127.0.0.1."""

from __future__ import annotations

import re
import socket

from rtplay.model.events import State
from rtplay.model.retry import ExponentialBackoff
from rtplay.tui.app import RtplayApp
from rtplay.tui.backend import SessionBackend
from tests.tui.helpers import (
    counter,
    fault_bar,
    fault_keys,
    make_config,
    notice,
    pane_log,
    pane_status,
    status_bar,
    wait_for,
)

SIZE = (120, 40)


def session_of(app: RtplayApp):  # type: ignore[no-untyped-def]
    assert isinstance(app.backend, SessionBackend)
    return app.backend.session


async def test_drop_shows_retrying_then_open_on_the_selected_pane_only() -> None:
    # A fixed 0.8 s backoff keeps "retrying" on screen long enough to be seen at 10 Hz.
    slow_ws = {
        "retry": ExponentialBackoff(initial=0.8, maximum=0.8, jitter=0),
        "ping_interval": 0.5,
        "ping_timeout": 0.5,
    }
    app = RtplayApp(make_config(["sse", "ws"], ws=slow_ws))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
        await wait_for(pilot, lambda: pane_status(app, "sse").startswith("● open"), "sse open")
        await pilot.press("2", "d")
        # Why it went down, then the policy, next to the countdown (waited for, not sampled at
        # the first frame that says "retrying": on a busy machine the frames come late).
        retrying = re.compile(r"retrying in [\d.]+ s  \S.* · exp 0\.8s")
        await wait_for(pilot, lambda: retrying.search(pane_status(app, "ws")) is not None, "ws retrying, why, policy")
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open again")
        log = pane_log(app, "ws")
        assert "fault: drop on ws" in log
        assert "→ retry in 0.8 s (exp 0.8s" in log
        assert "reconnected (since=" in log
        assert counter(app, "ws", "reconnects") == 1
        assert "retry" not in pane_log(app, "sse")  # only the selection was dropped
        assert pane_status(app, "sse").startswith("● open")


async def test_sse_fails_for_good_after_error_503() -> None:
    app = RtplayApp(make_config(["sse"]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pane_status(app, "sse").startswith("● open"), "sse open")
        await pilot.press("1")
        assert "error 503" in fault_keys(app)
        await pilot.press("E")
        assert "error 500" in fault_keys(app)
        await pilot.press("E", "E", "E")  # 204, 429, back to 503
        assert "error 503" in fault_keys(app)
        await pilot.press("e")
        assert "error 503 on sse" in fault_bar(app)
        await pilot.press("d")  # the open stream is not affected by the error until it reconnects
        await wait_for(pilot, lambda: "failed: HTTP 503" in pane_status(app, "sse"), "sse failed")
        assert "no retry" in pane_log(app, "sse")
        assert "g restarts it" in pane_status(app, "sse")  # the failed pane says what helps
        assert session_of(app).clients["sse"].state is State.FAILED
        await pilot.press("e")  # the same key clears it
        assert "none active" in fault_bar(app)
        await pilot.press("g")
        await wait_for(pilot, lambda: pane_status(app, "sse").startswith("● open"), "sse open after g")


async def test_the_active_fault_list_follows_the_keys() -> None:
    app = RtplayApp(make_config(["sse", "ws"]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
        assert "none active" in fault_bar(app)
        await pilot.press("l")  # delay on all
        assert "delay 200ms on all" in fault_bar(app)
        await pilot.press("L", "2", "s")  # next delay 500 ms; stall on ws
        assert "stall on ws" in fault_bar(app) and "delay 200ms on all" in fault_bar(app)
        assert "delay 500ms" in fault_keys(app)
        await pilot.press("0", "l")  # the same kind on the same scope: cleared
        assert "delay" not in fault_bar(app) and "stall on ws" in fault_bar(app)
        active = session_of(app).faults.active()
        assert [(f.kind.value, f.scope) for f in active] == [("stall", "ws")]
        await pilot.press("x")
        assert "none active" in fault_bar(app)
        assert session_of(app).faults.active() == []


async def test_an_outage_from_a_selected_pane_takes_the_whole_server_down() -> None:
    app = RtplayApp(make_config(["sse", "ws"]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
        await pilot.press("2", "o")  # ws selected: the outage still stops every listener
        await wait_for(pilot, lambda: "outage 5s on all" in fault_bar(app), "the outage on all")
        assert [(f.kind.value, f.scope) for f in session_of(app).faults.active()] == [("outage", "all")]
        await wait_for(pilot, lambda: "retrying" in pane_status(app, "sse"), "sse down too")
        await pilot.press("o")  # the same key clears it, whichever pane is selected
        await wait_for(pilot, lambda: "none active" in fault_bar(app), "the outage cleared")


async def test_a_fault_that_makes_no_sense_is_an_error_notification() -> None:
    app = RtplayApp(make_config(["sse"]))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await pilot.press("1", "p")  # loss acts on datagrams: not on sse
        await wait_for(pilot, lambda: bool(notice(app)), "an error notice")
        assert "loss acts on datagrams" in notice(app)
        assert "none active" in fault_bar(app)


async def test_rate_keys_change_the_publish_rate() -> None:
    # Low rates only: Pilot waits for the process to idle after each key (the stop at
    # 1000 is covered in test_controls).
    app = RtplayApp(make_config(["ws"]))
    async with app.run_test(size=SIZE) as pilot:
        publisher = session_of(app)  # its rate is the server's, as the control API answered
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
        assert publisher.rate == 0 and "paused" in status_bar(app)
        await pilot.press("r")
        assert publisher.rate == 1
        await pilot.press("r")
        assert publisher.rate == 10
        await wait_for(pilot, lambda: "10 msg/s" in status_bar(app), "the status bar showing 10 msg/s")
        await wait_for(pilot, lambda: counter(app, "ws", "delivered") >= 5, "5 messages on screen")
        await pilot.press("R")
        assert publisher.rate == 1
        await pilot.press("R")
        assert publisher.rate == 1  # the slowest rate stays: no wrap to 1000 msg/s
        assert "slowest" in notice(app, "information")
        await pilot.press("space")
        assert publisher.rate == 0
        await wait_for(pilot, lambda: "paused" in status_bar(app), "paused on screen")
        await pilot.press("space")
        assert publisher.rate == 1  # resumed at the rate before the pause


async def test_quit_stops_the_session() -> None:
    app = RtplayApp(make_config(["sse", "ws"]))
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: pane_status(app, "ws").startswith("● open"), "ws open")
        session = session_of(app)
        await pilot.press("q")
    assert session.process is None and session.control is None  # the server process is gone
    assert all(client.state is State.STOPPED for client in session.clients.values())


async def test_a_session_that_cannot_start_ends_the_app_with_an_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = make_config(["ws"])
        config.server.http_port = port
        app = RtplayApp(config)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.return_code is not None, "the app to give up")
    assert app.return_code == 1
