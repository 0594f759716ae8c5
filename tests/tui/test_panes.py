"""Pane parts as pure functions: fixed counter places, whole words, the restart hint."""

from __future__ import annotations

import re
from dataclasses import replace

from rich.console import Console

from rtplay.model.events import State
from rtplay.tui.charts import ChartData, Series, render_chart
from rtplay.tui.history import MARK_FAULT
from rtplay.tui.model import ChannelModel, LogLine
from rtplay.tui.panes import CounterData, PaneStatusData, counter_groups, log_lines, status_text
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
    assert lines == ["   5.0s failed: HTTP"]


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
