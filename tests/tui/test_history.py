"""Chart history and the retry-decision log, fed events and numbers directly."""

from __future__ import annotations

from rtplay.model.events import (
    Connected,
    Connecting,
    Disconnected,
    Failed,
    FaultEnded,
    FaultStarted,
    RequestResent,
    ResetReceived,
    RetryScheduled,
)
from rtplay.protocol.faults import Fault, Kind
from rtplay.tui.history import (
    MARK_DOWN,
    MARK_FAILED,
    MARK_FAULT,
    MARK_RESET,
    MARK_UP,
    ChannelHistory,
    EventLog,
    TransportHistory,
    stronger,
)


def fault(kind: Kind, value: float | None = None, scope: str = "all") -> Fault:
    return Fault(1, kind, scope, value, 0.0, 10.0, None)


def texts(log: EventLog) -> list[str]:
    return [line.text.replace("\u00a0", " ") for line in log.lines]


def test_a_disconnect_and_its_retry_decision_are_one_line() -> None:
    log = EventLog(origin=100.0)
    assert log.on_event(Connecting("sse", 100.0, 1)) == ""
    assert log.on_event(Connected("sse", 100.1, "Last-Event-ID: (none)")) == ""  # the first connect: no marker
    assert log.on_event(Disconnected("sse", 105.0, "dropped by server")) == MARK_DOWN
    log.on_event(RetryScheduled("sse", 105.0, 3.0, "retry: field"))
    assert log.on_event(Connected("sse", 108.0, "Last-Event-ID: 42")) == MARK_UP
    assert texts(log) == [
        "connected (Last-Event-ID: (none))",
        "dropped by server → retry in 3 s (retry: field)",
        "reconnected (Last-Event-ID: 42)",
    ]
    assert [round(line.at_s, 1) for line in log.lines] == [0.1, 5.0, 8.0]


def test_repeated_decisions_collapse_into_a_count() -> None:
    log = EventLog(origin=0.0)
    for t in range(3):
        log.on_event(Disconnected("ws", t, "connection refused"))
        log.on_event(RetryScheduled("ws", t, 0.5, "fixed 0.5s"))
    assert texts(log) == ["connection refused → retry in 0.5 s (fixed 0.5s)"]
    assert log.lines[-1].repeat == 3 and log.lines[-1].at_s == 2


def test_fixed_polling_says_when_the_next_poll_is() -> None:
    log = EventLog(origin=0.0)
    log.on_event(Disconnected("poll", 1.0, "HTTP 503"))
    log.on_event(RetryScheduled("poll", 1.0, 1.0, "next poll in 1s (fixed interval)"))
    assert texts(log) == ["HTTP 503 → next poll in 1s (fixed interval)"]


def test_failures_resets_and_faults_are_logged_with_markers() -> None:
    log = EventLog(origin=0.0)
    assert log.on_event(FaultStarted("all", 1.0, fault(Kind.ERROR, 503))) == MARK_FAULT
    assert log.on_event(Failed("sse", 1.2, "HTTP 503: EventSource does not reconnect")) == MARK_FAILED
    assert log.on_event(ResetReceived("wt", 2.0, "stream", 40)) == MARK_RESET
    assert log.on_event(FaultEnded("all", 3.0, fault(Kind.DROP))) == ""  # one-shot: no "ended"
    assert texts(log) == [
        "fault: error 503 on all",
        "failed: HTTP 503: EventSource does not reconnect — no retry",
        "reset on stream: 40 msgs gone from the server's buffer",
    ]
    assert log.tail(2) == tuple(log.lines)[-2:]


def test_a_request_the_http_client_sent_again_is_logged_as_a_down() -> None:
    log = EventLog(origin=0.0)
    assert log.on_event(RequestResent("longpoll", 2.0, "connection reset before an answer; sent again")) == MARK_DOWN
    assert texts(log) == ["connection reset before an answer; sent again"]


def test_the_log_is_bounded() -> None:
    log = EventLog(origin=0.0, maxlen=5)
    for i in range(20):
        log.on_event(Disconnected("ws", i, f"reason {i}"))
    assert len(log.lines) == 5 and log.lines[-1].text == "reason 19"


def test_samples_are_rates_and_worst_latency_with_gaps() -> None:
    channel = ChannelHistory(maxlen=3)
    channel.sample(10, 5.0, 0.5)
    channel.sample(10, 7.0, 0.5)  # nothing new: a gap, not a latency
    channel.sample(60, 9.0, 0.5)
    channel.sample(61, 1.0, 0.5)
    assert list(channel.arrivals) == [0.0, 100.0, 2.0]
    assert list(channel.latency) == [None, 9.0, 1.0]


def test_the_strongest_marker_of_a_sample_wins() -> None:
    history = TransportHistory(("main",))
    history.mark(MARK_UP)
    history.mark(MARK_FAULT)
    history.mark(MARK_DOWN)
    history.close_sample()
    history.close_sample()
    assert list(history.marks) == [MARK_FAULT, ""]
    assert stronger("", MARK_UP) == MARK_UP and stronger(MARK_RESET, MARK_DOWN) == MARK_RESET


def test_a_client_that_keeps_failing_keeps_its_cause_on_every_retry_line() -> None:
    # Fixed polling reports the disconnect once; later failed polls only schedule the next one.
    log = EventLog(0.0)
    log.on_event(Disconnected("poll", 1.0, "HTTP 503"))
    for at in (1.0, 2.0, 3.0):
        log.on_event(RetryScheduled("poll", at, 1.0, "next poll in 1s (fixed interval)"))
    assert texts(log) == ["HTTP 503 → next poll in 1s (fixed interval)"]
    assert log.lines[-1].repeat == 3
    assert log.last_reason == "HTTP 503"
    log.on_event(FaultStarted("poll", 4.0, fault(Kind.OUTAGE, 5)))  # the cause may change now
    log.on_event(RetryScheduled("poll", 4.1, 1.0, "next poll in 1s (fixed interval)"))
    assert texts(log)[-1] == "→ next poll in 1s (fixed interval)"
    log.on_event(Connected("poll", 9.0, "since=3"))
    assert log.last_reason is None


def test_a_drop_noticed_before_its_fault_event_keeps_its_cause() -> None:
    """The server hangs up first and says so after: the client's down (at 1.02) reaches the
    log before the drop's start (opened at 1.0) and end. The pane's status kept the cause only
    when the fault's events came first; now it keeps it either way."""
    log = EventLog(0.0)
    log.on_event(Disconnected("ws", 1.02, "no close frame"))
    log.on_event(RetryScheduled("ws", 1.02, 0.8, "exp 0.8s"))
    log.on_event(FaultStarted("ws", 1.0, fault(Kind.DROP, scope="ws")))
    log.on_event(FaultEnded("ws", 1.03, fault(Kind.DROP, scope="ws")))
    assert log.last_reason == "no close frame"
    log.on_event(FaultStarted("ws", 1.5, fault(Kind.OUTAGE, 5)))  # later, while down: may change
    assert log.last_reason is None
