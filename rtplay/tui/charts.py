"""A small, fast time chart: braille latency lines, block-bar arrivals, a marker axis.

Rendering is a pure function of the samples and the size (:func:`render_chart`), so it is
tested and snapshotted directly. Two samples share a braille column; the newest sample is
at the right edge. Channels of a multi-channel transport are stacked on shared scales, so
a lossy datagram channel visibly arrives less than its reliable twin.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive

from rtplay.tui.history import (
    MARK_DOWN,
    MARK_FAILED,
    MARK_FAULT,
    MARK_FAULT_END,
    MARK_RESET,
    MARK_UP,
    SAMPLE_S,
    stronger,
)
from rtplay.tui.lines import TextLines
from rtplay.tui.styles import NO_STYLES, Styles, get

MARK_NAMES = {
    MARK_FAULT: "fault",
    MARK_FAILED: "failed",
    MARK_RESET: "reset",
    MARK_FAULT_END: "fault-end",
    MARK_DOWN: "down",
    MARK_UP: "up",
}
"""The style name of each marker (``chart--fault`` etc. in the .tcss)."""

STYLE_NAMES = ("latency", "arrivals", "axis", "label", *MARK_NAMES.values())

_BRAILLE_BASE = 0x2800
_LEFT_DOTS = (0x01, 0x02, 0x04, 0x40)  # dot rows top to bottom, left column
_RIGHT_DOTS = (0x08, 0x10, 0x20, 0x80)  # right column
_BARS = " ▁▂▃▄▅▆▇█"


@dataclass(frozen=True, slots=True)
class Series:
    """One channel's samples, oldest first (two per chart column)."""

    name: str
    latency: tuple[float | None, ...]
    arrivals: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ChartData:
    """What a chart draws: one series per channel and a marker per sample."""

    series: tuple[Series, ...]
    marks: tuple[str, ...] = ()


def nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 × 10ⁿ at or above ``value`` (a readable scale top)."""
    if value <= 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10.0**exponent
        if top >= value * (1 - 1e-9):
            return top
    return 10.0 ** (exponent + 1)


def _tail(values: Sequence[object], n: int) -> list[object]:
    """The last ``n`` values, left-padded with None to exactly ``n``."""
    tail = list(values[-n:]) if n > 0 else []
    return [None] * (n - len(tail)) + tail


def braille_rows(values: Sequence[float | None], width: int, rows: int, top: float) -> list[str]:
    """Plot ``values`` (two per column, newest at the right) as a braille line."""
    if width <= 0 or rows <= 0:
        return []
    cells = [[0] * width for _ in range(rows)]
    height = rows * 4
    previous: int | None = None
    for j, value in enumerate(_tail(values, width * 2)):
        if value is None:
            previous = None
            continue
        assert isinstance(value, int | float)
        level = min(height - 1, max(0, round(value / top * (height - 1))))
        low, high = (level, level) if previous is None else (min(level, previous), max(level, previous))
        column, dots = j // 2, (_LEFT_DOTS if j % 2 == 0 else _RIGHT_DOTS)
        for y in range(low, high + 1):  # join to the previous point: a line, not dust
            from_top = height - 1 - y
            cells[from_top // 4][column] |= dots[from_top % 4]
        previous = level
    return ["".join(chr(_BRAILLE_BASE + c) if c else " " for c in row) for row in cells]


def bar_rows(values: Sequence[float], width: int, rows: int, top: float) -> list[str]:
    """Plot ``values`` (the mean of two per column) as block bars, ``rows`` high."""
    if width <= 0 or rows <= 0:
        return []
    padded = _tail(values, width * 2)
    heights: list[int] = []
    for column in range(width):
        pair = [float(v) for v in padded[column * 2 : column * 2 + 2] if isinstance(v, int | float)]
        mean = sum(pair) / len(pair) if pair else 0.0
        eighths = round(mean / top * rows * 8)
        heights.append(max(1, eighths) if mean > 0 else 0)  # anything arriving shows
    lines = []
    for row in range(rows - 1, -1, -1):
        lines.append("".join(_BARS[min(8, max(0, h - row * 8))] for h in heights))
    return lines


def marker_row(marks: Sequence[str], width: int, styles: Styles = NO_STYLES) -> Text:
    """The time axis: a marker where a fault, disconnect, reconnect or reset happened."""
    padded = _tail(marks, width * 2)
    chars = [stronger(str(padded[c * 2] or ""), str(padded[c * 2 + 1] or "")) or "─" for c in range(width)]
    text = Text("".join(chars), get(styles, "axis"), no_wrap=True, overflow="crop")
    for column, mark in enumerate(chars):
        if mark != "─":
            text.stylize(get(styles, MARK_NAMES.get(mark, "axis")), column, column + 1)
    return text


def _split(rows: int, channels: int) -> list[tuple[int, int]]:
    """(latency rows, arrival rows) per channel for ``rows`` rows of plot.

    Rows are shared out evenly (the first channels get the remainder); a channel gets a
    bar row once it has two rows, and a third of its rows from six on.
    """
    n = max(1, channels)
    split = []
    for i in range(n):
        own = rows // n + (1 if i < rows % n else 0)
        bars = own // 3 if own >= 6 else (1 if own >= 2 else 0)
        split.append((own - bars, bars))
    return split


def render_chart(data: ChartData | None, width: int, height: int, styles: Styles = NO_STYLES) -> Text:
    """The whole chart for a ``width`` × ``height`` cell area."""
    return Text("\n").join(chart_lines(data, width, height, styles))


def chart_lines(data: ChartData | None, width: int, height: int, styles: Styles = NO_STYLES) -> list[Text]:
    """The chart's lines for a ``width`` × ``height`` cell area (at most ``height``)."""
    if data is None or not data.series or width <= 0 or height <= 0:
        return []
    shown = width * 2  # the scales fit the samples on screen, not those scrolled off
    lat_top = nice_ceiling(max([v for s in data.series for v in s.latency[-shown:] if v is not None], default=1.0))
    arr_top = nice_ceiling(max([v for s in data.series for v in s.arrivals[-shown:]], default=1.0))
    if height == 1:
        return [one_line_chart(data, width, arr_top, styles)]
    lines: list[Text] = []
    legend = height >= 3
    axis = height >= 2
    plot_rows = height - legend - axis
    if legend:
        lines.append(_legend(lat_top, arr_top, width, styles))
    multi = len(data.series) > 1
    for series, (lat_rows, bar_count) in zip(data.series, _split(plot_rows, len(data.series)), strict=False):
        latency, arrivals = get(styles, "latency"), get(styles, "arrivals")
        strip = [Text(row, latency) for row in braille_rows(series.latency, width, lat_rows, lat_top)]
        strip += [Text(row, arrivals) for row in bar_rows(series.arrivals, width, bar_count, arr_top)]
        if multi and strip:
            label = f"{series.name} "[:width]
            first = strip[0]
            strip[0] = Text.assemble((label, get(styles, "label")), first[len(label) :])
        lines.extend(strip)
    while len(lines) < height - axis:
        lines.append(Text(""))
    if axis:
        lines.append(marker_row(data.marks, width, styles))
    return lines[:height]


def one_line_chart(data: ChartData, width: int, arr_top: float, styles: Styles = NO_STYLES) -> Text:
    """The compact chart: the first channel's arrivals as bars, markers drawn over them, and
    the scale at the right (``▂▂▃  ▲▂△▂ ≤500/s``)."""
    label = f" ≤{_short(arr_top)}/s"
    plot = max(0, width - len(label)) if width > len(label) + 8 else width
    bars = bar_rows(data.series[0].arrivals, plot, 1, arr_top)[0] if plot else ""
    padded = _tail(data.marks, plot * 2)
    marks = [stronger(str(padded[c * 2] or ""), str(padded[c * 2 + 1] or "")) for c in range(plot)]
    text = Text(no_wrap=True, overflow="crop")
    for bar, mark in zip(bars, marks, strict=True):
        if mark:
            text.append(mark, get(styles, MARK_NAMES.get(mark, "axis")))
        else:
            text.append(bar, get(styles, "arrivals"))
    if plot < width:
        text.append(label, get(styles, "axis"))
    return text


def _short(value: float) -> str:
    """A scale top: ``0.5``, ``20``, ``2k``."""
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def _legend(lat_top: float, arr_top: float, width: int, styles: Styles) -> Text:
    """The scales (and the time window when it fits), longest variant that fits."""
    window = f"last {width * 2 * SAMPLE_S:g} s"
    lat, arr = f"≤{_short(lat_top)} ms", f"≤{_short(arr_top)}/s"
    variants = (
        (f"latency {lat}  ", f"arrivals {arr}  ", window),
        (f"latency {lat}  ", f"arrivals {arr}", ""),
        (f"{lat} ", arr, ""),
    )
    for lat_label, arr_label, tail in variants:
        if 4 + len(lat_label) + len(arr_label) + len(tail) <= width:
            break
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("⣀ ", get(styles, "latency"))
    text.append(lat_label)
    text.append("▆ ", get(styles, "arrivals"))
    text.append(arr_label)
    text.append(tail, get(styles, "axis"))
    text.truncate(width, overflow="ellipsis")
    return text


class Chart(TextLines):
    """Draws a :class:`ChartData` to fit its size; repaints only when the data changes."""

    STYLE_PREFIX = "chart"
    STYLE_NAMES = STYLE_NAMES

    data: reactive[ChartData | None] = reactive(None, repaint=False)

    def watch_data(self) -> None:
        self.repaint_lines()

    def text_lines(self, size: Size) -> list[Text]:
        return chart_lines(self.data, size.width, size.height, self.text_styles)

    def render(self) -> Text:
        return render_chart(self.data, self.size.width, self.size.height, self.text_styles)
