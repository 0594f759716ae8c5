"""The chart renderer: a pure function of samples and size."""

from __future__ import annotations

from rtplay.tui.charts import (
    ChartData,
    Series,
    bar_rows,
    braille_rows,
    marker_row,
    nice_ceiling,
    render_chart,
)
from rtplay.tui.history import MARK_FAULT, MARK_UP


def test_scale_tops_are_round_numbers() -> None:
    assert [nice_ceiling(v) for v in (0, 0.3, 1, 1.5, 3, 7, 12, 999, 1001)] == [1, 0.5, 1, 2, 5, 10, 20, 1000, 2000]


def test_braille_plots_two_samples_per_column_newest_right() -> None:
    rows = braille_rows([0.0, 10.0], width=2, rows=1, top=10.0)
    assert rows == [" " + chr(0x2800 | 0x40 | 0x08 | 0x10 | 0x20 | 0x80)]  # bottom-left dot, then a rising line


def test_gaps_break_the_line() -> None:
    rows = braille_rows([5.0, None, None, 5.0], width=2, rows=1, top=10.0)
    assert rows[0][0] != " " and rows[0][1] != " "
    assert braille_rows([None, None], width=1, rows=2, top=1.0) == [" ", " "]


def test_bars_fill_in_eighths_and_anything_arriving_shows() -> None:
    assert bar_rows([8.0, 8.0, 4.0, 4.0, 0.01, 0.01, 0.0, 0.0], width=4, rows=1, top=8.0) == ["█▄▁ "]
    assert bar_rows([16.0, 16.0], width=1, rows=2, top=16.0) == ["█", "█"]


def test_markers_sit_on_the_time_axis() -> None:
    assert marker_row(["", MARK_UP, MARK_FAULT, ""], width=2).plain == f"{MARK_UP}{MARK_FAULT}"
    assert marker_row([], width=3).plain == "───"


def test_the_chart_fits_any_size() -> None:
    data = ChartData(
        (Series("stream", (1.0, 2.0) * 50, (10.0,) * 100), Series("datagram", (1.5,) * 100, (8.0,) * 100)), ("",) * 100
    )
    for width, height in ((40, 10), (10, 2), (1, 1), (120, 30)):
        lines = render_chart(data, width, height).plain.split("\n")
        assert len(lines) == height
        assert all(len(line) <= width for line in lines)
    text = render_chart(data, 40, 10).plain
    assert "latency ≤2 ms" in text and "arrivals ≤10/s" in text and "stream" in text and "datagram" in text
    assert render_chart(None, 10, 5).plain == ""
