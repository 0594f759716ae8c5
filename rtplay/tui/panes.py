"""One pane per transport: status line, chart, counters and the retry-decision log.

Data flows down: the main screen hands each pane its model on its timer, and the pane
hands each child only its part, so a child repaints only when its part changed (and then
only its rows that changed, see ``rtplay.tui.lines``). Colours come from the palette in
``rtplay.tcss``. Text is broken between words, never inside
one: a reason is wrapped onto the next line rather than cut.

On a short terminal the pane takes its compact form (``-compact``): the status line, a
one-line chart with its scale, the key counters, and the newest retry decision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Span, Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.geometry import Size
from textual.reactive import reactive

from rtplay.model.events import State
from rtplay.tui.charts import Chart, ChartData, Series
from rtplay.tui.info import TITLES
from rtplay.tui.lines import TextLines
from rtplay.tui.model import DETAIL_SEPARATOR, ChannelModel, LogLine, PaneModel, format_count, format_ms
from rtplay.tui.styles import NO_STYLES, Styles, get
from rtplay.tui.textflow import flow, wrap_words

STATE_ICONS = {
    State.CONNECTING: "◌",
    State.OPEN: "●",
    State.RETRYING: "◐",
    State.FAILED: "✖",
    State.STOPPED: "■",
}

#: What a failed pane offers: the key that starts the client again.
RESTART_HINT = "g restarts it"


class WrappedText(TextLines):
    """A widget whose lines are laid out for its width, and whose height follows them."""

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._cache: tuple[object, int, int, list[Text]] = (None, -1, -1, [])

    def layout_lines(self, width: int) -> list[Text]:
        """The lines for ``width`` cells (subclasses)."""
        raise NotImplementedError

    def _source(self) -> object:
        """What the lines are made of: a new value lays them out again."""
        raise NotImplementedError

    def lines(self, width: int) -> list[Text]:
        """The laid-out lines, kept for the latest data and width (asked for 3× a frame)."""
        source, cached_width, version, lines = self._cache
        if source is not self._source() or cached_width != width or version != self.styles_version:
            lines = self.layout_lines(max(10, width))  # the lines carry the palette's styles
            self._cache = (self._source(), width, self.styles_version, lines)
        return lines

    def relayout(self) -> None:
        """The data changed: repaint the rows that changed, and lay the pane out again when
        the height changed."""
        if not self.size.width:  # hidden (another pane is zoomed): laid out when shown
            return
        if len(self.lines(self.size.width)) != self.size.height:
            self.refresh(layout=True)
        else:
            self.repaint_lines()

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self.lines(width)))

    def text_lines(self, size: Size) -> list[Text]:
        return self.lines(size.width)

    def render(self) -> Text:
        return Text("\n").join(self.lines(self.size.width))


@dataclass(frozen=True, slots=True)
class PaneStatusData:
    """A pane's status line: state, ``open`` / ``retrying in 2.4 s`` / ``failed: …``, why."""

    state: State
    status: str
    detail: str = ""
    compact: bool = False
    """The compact pane form: the detail's last parts (``· retry exp …``) go rather than
    take a second row from the newest retry decision."""


def status_lines(data: PaneStatusData, width: int, styles: Styles = NO_STYLES) -> list[Text]:
    """The status wrapped between words to ``width``; in the compact form, the detail's
    trailing parts left out, whole, while it takes more than one row."""
    lines = wrap_words(status_text(data, styles), width, indent=2)
    parts = data.detail.split(DETAIL_SEPARATOR)
    while data.compact and len(lines) > 1 and len(parts) > 1:
        parts.pop()
        fewer = replace(data, detail=DETAIL_SEPARATOR.join(parts))
        lines = wrap_words(status_text(fewer, styles), width, indent=2)
    return lines


def status_text(data: PaneStatusData, styles: Styles = NO_STYLES) -> Text:
    """``● open  since=42``, ``✖ failed: HTTP 503 — g restarts it``."""
    text = Text()
    text.append(f"{STATE_ICONS.get(data.state, '?')} {data.status}", get(styles, data.state.value))
    if data.detail:
        text.append(f"  {data.detail}", get(styles, "detail"))
    if data.state is State.FAILED:
        text.append(f"  {RESTART_HINT}", get(styles, "hint"))
    return text


class PaneStatus(WrappedText):
    """The state and why, wrapped between words onto as many lines as the CSS allows."""

    STYLE_PREFIX = "status"
    STYLE_NAMES = (*(s.value for s in State), "detail", "hint")

    data: reactive[PaneStatusData | None] = reactive(None, repaint=False)

    def _source(self) -> object:
        return self.data

    def layout_lines(self, width: int) -> list[Text]:
        if self.data is None:
            return []
        return status_lines(self.data, width, self.text_styles)

    def watch_data(self) -> None:
        self.relayout()


@dataclass(frozen=True, slots=True)
class CounterData:
    """The counters of a pane (its channels without their chart series)."""

    channels: tuple[ChannelModel, ...]
    connects: int
    reconnects: int
    downtime_s: float
    compact: bool = False
    """The compact pane form: only the key counters."""

    @classmethod
    def of(cls, pane: PaneModel, compact: bool = False) -> CounterData:
        bare = tuple(replace(c, latency=(), arrivals=()) for c in pane.channels)
        return cls(bare, pane.connects, pane.reconnects, pane.downtime_s, compact)


COUNTER_STYLES = ("label", "value", "bad", "warn", "reset", "muted", "channel")

#: Below this width (cells) counters use short labels.
SHORT_LABELS_WIDTH = 50

#: Cells of each counter's value: values are right-aligned in them, so a line never shifts
#: when a count grows or a counter becomes non-zero (5 cells: exact up to 99 999, then 123k).
COUNT_CELLS = {"delivered": 5, "behind": 5, "connects": 3, "reconnects": 3}
SMALL_COUNT_CELLS = 4
LATENCY_CELLS = 6
RATE_CELLS = 6
DOWN_CELLS = 6

#: What a count or latency shows when it cannot be known (target mode, no adapter for it).
UNKNOWN = "unknown"

SHORT_LABELS = {"delivered": "deliv", "reconnects": "reconn", "connects": "conn", "datagram": "dgram"}


def fit_count(n: float, cells: int) -> str:
    """``n`` exactly when it fits in ``cells``, else compactly (``12k``, ``1.2M``)."""
    exact = f"{n:.0f}"
    return exact if len(exact) <= cells else format_count(n)


def counter_groups(data: CounterData, styles: Styles = NO_STYLES, short: bool = False) -> list[list[Text]]:
    """The counters as lines of fixed-width items: the same items in the same places on
    every frame, so nothing jumps when a value grows or stops being zero."""

    def item(label: str, value: str, cells: int, style: str = "value") -> Text:
        head = f"{SHORT_LABELS.get(label, label) if short else label}\u00a0"
        text = head + value.rjust(cells)
        return Text(text, spans=[Span(0, len(head), get(styles, "label")), Span(len(head), len(text), get(styles, style))])

    def count(label: str, n: float | None, style: str = "value") -> Text:
        cells = COUNT_CELLS.get(label, SMALL_COUNT_CELLS)
        if n is None:  # target mode without the adapter that would measure it: never 0
            return item(label, UNKNOWN, cells, "muted")
        return item(label, fit_count(n, cells), cells, style if n else "value")

    def ms(label: str, value: float | None, known: bool = True) -> Text:
        if not known:
            return item(label, UNKNOWN, LATENCY_CELLS, "muted")
        return item(label, f"{format_ms(value)}ms" if value is not None else "-", LATENCY_CELLS)

    def rx(ch: ChannelModel) -> Text:
        return item("rx", f"{ch.rate:.0f}/s", RATE_CELLS)

    down = item("down", f"{data.downtime_s:.1f}s", DOWN_CELLS, "warn" if data.downtime_s else "value")
    reconnects = count("reconnects", data.reconnects, "warn")
    multi = len(data.channels) > 1
    lines: list[list[Text]] = []
    for i, ch in enumerate(data.channels):
        head = [count("delivered", ch.delivered), count("lost", ch.lost, "bad")]
        if multi:
            name = SHORT_LABELS.get(ch.name, ch.name) if short else ch.name
            head.insert(0, Text(f"{name}:", get(styles, "channel")))
        if data.compact:  # a reset is as telling as a loss: it keeps its place here
            lines.append(head if multi else [*head, count("reset", ch.lost_to_reset, "reset")])
            continue
        if i > 0:  # a best-effort channel: never pending nor replayed, so fewer rows, and
            # the pane keeps room for its retry log (wt and rtc have two channels)
            lines.append(head)
            lines.append([count("dup", ch.duplicates, "warn"), count("ooo", ch.out_of_order, "warn"), rx(ch)])
            lines.append([ms("p50", ch.p50_ms, ch.latency_known), ms("p99", ch.p99_ms, ch.latency_known)])
            continue
        lines.append([*head, count("pending", ch.behind, "muted")])
        lines.append(
            [count("reset", ch.lost_to_reset, "reset"), count("dup", ch.duplicates, "warn"),
             count("ooo", ch.out_of_order, "warn")]
        )
        known = ch.latency_known
        lines.append([ms("p50", ch.p50_ms, known), ms("p99", ch.p99_ms, known), rx(ch)])
        lines.append([ms("p50 10s", ch.recent_p50_ms, known), ms("p99 10s", ch.recent_p99_ms, known)])
    first = data.channels[0] if data.channels else ChannelModel("main")
    if data.compact:  # the rate is on the chart's scale line already
        lines.append([ms("p50", first.p50_ms, first.latency_known), reconnects, down])
    else:
        lines.append([count("connects", data.connects), reconnects, down])
    return lines


class Counters(WrappedText):
    """Delivered, lost, pending, reset, duplicates, out of order, p50/p99, connects, downtime."""

    STYLE_PREFIX = "counters"
    STYLE_NAMES = COUNTER_STYLES

    data: reactive[CounterData | None] = reactive(None, repaint=False)

    def _source(self) -> object:
        return self.data

    def layout_lines(self, width: int) -> list[Text]:
        if self.data is None:
            return []
        groups = counter_groups(self.data, self.text_styles, short=width < SHORT_LABELS_WIDTH)
        widest = max([sum([i.cell_len for i in g]) + len(g) - 1 for g in groups], default=0)
        gap = 2 if widest + max([len(g) - 1 for g in groups]) <= width else 1  # two spaces when all fit
        return flow(groups, width, gap)

    def watch_data(self) -> None:
        self.relayout()


LOG_KINDS = ("retry", "down", "failed", "reset", "open", "fault")

#: Cells of the time column of a log line; continuation lines are indented by as much.
LOG_TIME_CELLS = 8


def log_line(line: LogLine, styles: Styles = NO_STYLES, form: str | None = None) -> Text:
    """``  12.3s server closed the stream → retry in 0.1 s (eventsource, the stream's retry:) ×3``
    (``form``: one of the line's shorter forms instead of its text)."""
    text = Text()
    text.append(f"{line.at_s:6.1f}s ", get(styles, "time"))
    text.append(line.text if form is None else form, get(styles, line.kind))
    if line.repeat > 1:
        text.append(f" ×{line.repeat}", get(styles, "repeat"))
    return text


def newest_alone(line: LogLine, width: int, height: int, styles: Styles = NO_STYLES) -> list[Text]:
    """The newest line in a log too small for its text: the longest of its forms that fits
    ``height`` rows whole; if none does, the shortest cut between words, ending in ``…``."""
    wrapped: list[Text] = []
    for form in line.forms():
        wrapped = wrap_words(log_line(line, styles, form), width, indent=LOG_TIME_CELLS)
        if len(wrapped) <= height:
            return wrapped
    rows = wrapped[:height]
    if rows:
        last = wrap_words(rows[-1], width - 1)[0] if rows[-1].cell_len >= width else rows[-1]
        rows[-1] = last + Text("…", get(styles, "time"))
    return rows


def log_lines(lines: tuple[LogLine, ...], width: int, height: int, styles: Styles = NO_STYLES) -> list[Text]:
    """The newest log lines that fit ``height`` rows, each wrapped between words."""
    out: list[Text] = []
    for line in reversed(lines):
        wrapped = wrap_words(log_line(line, styles), width, indent=LOG_TIME_CELLS)
        if not out and len(wrapped) > height:
            return newest_alone(line, width, height, styles)
        if len(out) + len(wrapped) > height:
            break
        out[:0] = wrapped
        if len(out) >= height:
            break
    return out[-height:] if height > 0 else []


class RetryLog(TextLines):
    """The newest retry decisions that fit, oldest at the top."""

    STYLE_PREFIX = "log"
    STYLE_NAMES = (*LOG_KINDS, "time", "repeat")

    lines: reactive[tuple[LogLine, ...]] = reactive(())

    def render(self) -> Text:
        styles = self.text_styles
        if not self.lines:
            return Text("no retries yet", get(styles, "time"))
        return Text("\n").join(log_lines(self.lines, self.size.width, self.size.height, styles))


class TransportPane(Vertical):
    """A transport's pane: fed a :class:`PaneModel`, it updates its parts."""

    model: reactive[PaneModel | None] = reactive(None, repaint=False)
    compact: reactive[bool] = reactive(False, repaint=False)
    """The compact form (a short terminal): key counters only, a one-line chart."""

    def __init__(self, transport: str, index: int) -> None:
        super().__init__(id=f"pane-{transport}", classes="pane")
        self.transport = transport
        self.index = index
        self.border_title = f"{index} {transport}"
        self.border_subtitle = TITLES.get(transport, "")
        self._status = PaneStatus(classes="pane-status")
        self._chart = Chart(classes="pane-chart")
        self._counters = Counters(classes="pane-counters")
        self._log = RetryLog(classes="pane-log")
        self._state_classes: tuple[State, bool] | None = None

    def compose(self) -> ComposeResult:
        yield self._status
        yield self._chart
        yield self._counters
        yield self._log

    def show(self, model: PaneModel, due: bool = True) -> None:
        """Show ``model`` when ``due`` or when the state changed (the screen spreads the
        panes over frames; a reconnect or a failure shows at once)."""
        if not due and self.model is not None and self.model.state is model.state:
            return
        self.model = model
        self.show_figures()

    def show_figures(self) -> None:
        """Show the chart and the counters of the latest model."""
        model = self.model
        if model is None or not self.is_mounted:
            return
        series = tuple(Series(c.name, c.latency, c.arrivals) for c in model.channels)
        self._chart.data = ChartData(series, model.marks)
        self._counters.data = CounterData.of(model, self.compact)

    def watch_compact(self, compact: bool) -> None:
        self.set_class(compact, "-compact")
        self.watch_model(self.model)
        self.show_figures()

    def watch_model(self, model: PaneModel | None) -> None:
        if model is None or not self.is_mounted:
            return
        self._status.data = PaneStatusData(model.state, model.status, model.detail, self.compact)
        self._log.lines = model.log
        classes = (model.state, len(model.channels) > 1)
        if classes != self._state_classes:  # ten frames a second: only when they change
            self._state_classes = classes
            for state in State:
                self.set_class(model.state is state, f"-{state.value}", update=False)
            self.set_class(classes[1], "-multi", update=False)
            self.update_node_styles()  # one restyle, not one per class
