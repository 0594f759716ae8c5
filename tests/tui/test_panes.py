"""Pane parts as pure functions: fixed counter places, whole words, the restart hint."""

from __future__ import annotations

import re
from dataclasses import replace

from rich.console import Console

from rtplay.clients.longpoll import RESENT
from rtplay.model.events import Disconnected, Event, Failed, FaultStarted, RequestResent, ResetReceived, RetryScheduled, State
from rtplay.protocol.faults import Fault, Kind
from rtplay.tui.charts import ChartData, Series, render_chart
from rtplay.tui.history import MARK_FAULT, EventLog
from rtplay.tui.model import ChannelModel, LogLine
from rtplay.tui.panes import CounterData, PaneStatusData, counter_groups, log_lines, status_lines, status_text
from rtplay.tui.textflow import flow
from rtplay.tui.views import help_renderable


def _lines(data: CounterData, width: int = 36) -> list[str]:
    return [line.plain for line in flow(counter_groups(data, short=True), width, 1)]


def _label_columns(lines: list[str]) -> list[list[int]]:
    labels = r"(?<!\S)(deliv|lost|behind|reset|dup|ooo|p50|p99|rx|conn|reconn|down)(?=\u00a0| )"
    return [[m.start() for m in re.finditer(labels, line)] for line in lines]


def test_counters_keep_their_places_when_values_grow_or_stop_being_zero() -> None:
    for compact in (False, True):
        quiet = CounterData((ChannelModel("main", delivered=7),), 1, 0, 0.0, compact)
        busy = CounterData(
            (ChannelModel("main", delivered=11_804, lost=2360, behind=96, lost_to_reset=5, p50_ms=502.0),),
            3, 2, 6.1, compact,
        )
        assert _label_columns(_lines(quiet)) == _label_columns(_lines(busy)), compact
        assert [len(line) for line in _lines(quiet)] == [len(line) for line in _lines(busy)]


def test_compact_counters_keep_the_key_ones() -> None:
    data = CounterData((ChannelModel("main", delivered=5, lost=1, p50_ms=2.0),), 1, 1, 0.5, compact=True)
    text = " ".join(_lines(data, 37))
    for label in ("deliv", "lost", "reset", "p50", "reconn", "down"):  # reset too: it is never hidden
        assert label in text
    assert "behind" not in text and len(_lines(data, 37)) == 2
    assert all(len(line) <= 37 for line in _lines(data, 37))


def test_log_lines_wrap_between_words_with_a_hanging_indent() -> None:
    reason = "connection refused → next poll in 1\u00a0s (fixed interval)"
    lines = [t.plain for t in log_lines((LogLine(100.6, reason, "retry", 3),), 26, 10)]
    assert len(lines) > 1 and all(len(line) <= 26 for line in lines)
    assert all(line.startswith(" " * 8) for line in lines[1:])
    words = [w for w in " ".join(line.strip(" ") for line in lines).split(" ") if w]
    assert words == ["100.6s", *reason.split(" "), "×3"]  # every word whole, none cut


def test_the_newest_log_line_shows_from_its_start_when_it_is_taller_than_the_log() -> None:
    long = LogLine(5.0, "failed: HTTP 503: EventSource does not reconnect — no retry", "failed")
    lines = [t.plain for t in log_lines((LogLine(1.0, "connected", "open"), long), 20, 1)]
    assert lines == ["   5.0s failed:…"]  # no shorter form: cut between words, and says so


def compact_log_row(*events: Event) -> str:
    """The one row a compact pane's log shows at 80 columns (36 cells), after ``events``."""
    log = EventLog(origin=0.0)
    for event in events:
        log.on_event(event)
    (row,) = [t.plain.replace("\u00a0", " ") for t in log_lines(log.tail(5), 36, 1)]
    return row


def test_a_one_row_log_shows_a_whole_phrase_never_one_cut_mid_way() -> None:
    """At 80×24 the long-poll pane read "connection reset before an": a line too long for
    the compact pane's one row shows the longest of its short forms that fits, whole."""
    resent = compact_log_row(RequestResent("longpoll", 7.1, RESENT))
    assert resent == "   7.1s reset; request resent"
    down = Disconnected("ws", 3.0, "connection lost (no close frame)")
    retry = compact_log_row(down, RetryScheduled("ws", 3.0, 1.3, "exp 1s×2≤5s ±50%"))
    assert retry == "   3.0s → retry in 1.3 s"  # the reason alone is too long: the decision
    refused = compact_log_row(Disconnected("ws", 3.0, "connection refused"), RetryScheduled("ws", 3.0, 1.3, "exp"))
    assert refused == "   3.0s connection refused → retry"  # the status line counts the wait down
    drop = compact_log_row(FaultStarted("ws", 2.0, Fault(1, Kind.DELAY, "longpoll", 200, 50, 2.0, None)))
    assert drop == "   2.0s fault: delay on longpoll"
    failed = compact_log_row(Failed("sse", 4.0, "HTTP 503: EventSource does not reconnect"))
    assert failed == "   4.0s failed, no retry"
    reset = compact_log_row(ResetReceived("sse", 5.0, "main", 1234, 1300))
    assert reset == "   5.0s reset: 1234 msgs gone"
    roomy = [t.plain for t in log_lines((LogLine(1.0, RESENT, "down", brief=("x",)),), 120, 1)]
    assert roomy == [f"   1.0s {RESENT}"]  # room for the text: the text


def test_a_failed_status_offers_the_restart_key() -> None:
    assert status_text(PaneStatusData(State.FAILED, "failed: HTTP 503")).plain.endswith("g restarts it")
    assert "g restarts" not in status_text(PaneStatusData(State.OPEN, "open", "since=4")).plain


def test_the_one_line_chart_keeps_its_scale_and_markers() -> None:
    series = Series("main", (1.0,) * 40, (0.0,) * 20 + (100.0,) * 20)
    line = render_chart(ChartData((series,), ("",) * 30 + (MARK_FAULT,) + ("",) * 9), 30, 1).plain
    assert line.endswith(" ≤100/s") and MARK_FAULT in line and len(line) == 30
    taller = render_chart(ChartData((replace(series, name="x"),)), 30, 3).plain.split("\n")
    assert "≤" in taller[0]  # three rows already have room for the scales


def test_help_explains_the_header_figures() -> None:
    console = Console(width=120, record=True)
    console.print(help_renderable(120, ["sse", "ws"]))
    text = console.export_text()
    assert "ui Hz" in text and "frames the screen drew" in text and "how late the screen's timer fired" in text
    assert "1-2" in text and "1 sse, 2 ws" in text and "1-6" not in text


def test_a_compact_status_leaves_out_the_policy_rather_than_the_newest_log_row() -> None:
    """At 80×24 the sse, ws, wt and rtc panes wrapped ``· retry exp 1s×2≤5s ±50%`` onto a
    second row, and showed no retry decision at all."""
    full = PaneStatusData(State.OPEN, "open", "since=219 · retry exp 1s×2≤5s ±50%")
    assert len(status_lines(full, 38)) == 2  # a full pane keeps it, wrapped
    assert [t.plain for t in status_lines(replace(full, compact=True), 38)] == ["● open  since=219"]
    retrying = PaneStatusData(State.RETRYING, "retrying in 2.4 s", "HTTP 503 · exp 1s×2≤5s ±50%", True)
    assert [t.plain for t in status_lines(retrying, 38)] == ["◐ retrying in 2.4 s  HTTP 503"]
    failed = PaneStatusData(State.FAILED, "failed: HTTP 503: EventSource does not reconnect", compact=True)
    assert " ".join(t.plain.strip() for t in status_lines(failed, 38)).endswith("reconnect  g restarts it")
