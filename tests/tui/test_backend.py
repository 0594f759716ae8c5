"""What the live backend makes of the engine: logs only where a fault acts, the cursor now."""

from __future__ import annotations

from rtplay.clients.sse import SSEClient
from rtplay.clients.ws import WebSocketClient
from rtplay.engine.session import Session
from rtplay.model.events import FaultStarted, State
from rtplay.protocol.faults import Fault, Kind
from rtplay.tui.backend import SessionBackend, acts_on, cursor_detail
from tests.tui.helpers import make_config


def test_a_fault_on_all_is_logged_only_in_the_panes_it_acts_on() -> None:
    backend = SessionBackend(Session(make_config(["poll", "longpoll", "sse", "ws", "wt", "rtc"])))
    backend.on_event(FaultStarted("all", 1.0, Fault(1, Kind.LOSS, "all", 20, 0.0, 1.0, None)))
    backend.on_event(FaultStarted("all", 2.0, Fault(2, Kind.DELAY, "all", 200, 0.0, 2.0, None)))
    logged = {name: [line.text for line in log.lines] for name, log in backend.logs.items()}
    for name in ("poll", "longpoll", "sse", "ws"):
        assert logged[name] == ["fault: delay 200ms on all"], name
    for name in ("wt", "rtc"):
        assert logged[name] == ["fault: loss 20% on all", "fault: delay 200ms on all"], name
    assert acts_on(Kind.OFFLINE, "sse") and not acts_on(Kind.DUPLICATE, "ws")


def test_the_state_line_shows_the_cursor_now_not_at_connect_time() -> None:
    for client in (SSEClient("http://127.0.0.1:9"), WebSocketClient("http://127.0.0.1:9")):
        client.state = State.OPEN
        client.state_detail = "since=0"  # what it said when it connected
        for seq in (1, 2, 3):
            client.stats["main"].on_message(seq, 0.0, 1.0, 0.0)
        assert cursor_detail(client) == ("Last-Event-ID: 3" if client.name == "sse" else "since=3")


def test_log_times_count_from_the_launch_even_for_events_before_the_session_started() -> None:
    from rtplay.model.events import Connected

    session = Session(make_config(["longpoll"]))
    session.clock = lambda: 5000.0  # a monotonic clock far from zero, as on any real machine
    backend = SessionBackend(session)
    # A long-poll held open connects while start() is still reaching the server process.
    backend.on_event(Connected("longpoll", 5001.5, "since=0"))
    (line,) = backend.logs["longpoll"].lines
    assert line.at_s == 1.5
