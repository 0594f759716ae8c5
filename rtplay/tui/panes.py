"""One pane per transport: status line, chart, counters and the retry-decision log.

Data flows down: the main screen sets :attr:`TransportPane.model` on its timer, and the pane
hands each child only its part, so a child repaints only when its part changed. Colours
come from component classes in ``rtplay.tcss``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.reactive import reactive

from rtplay.events import State
from rtplay.tui.charts import Chart, ChartData, Series
from rtplay.tui.info import TITLES
from rtplay.tui.model import ChannelModel, LogLine, PaneModel, format_ms
from rtplay.tui.styles import NO_STYLES, Styles, TextStyles, get
from rtplay.tui.textflow import flow

STATE_ICONS = {
    State.CONNECTING: "◌",
    State.OPEN: "●",
    State.RETRYING: "◐",
    State.FAILED: "✖",
    State.STOPPED: "■",
}


class PaneStatus(TextStyles):
    """One line: state icon, ``open`` / ``retrying in 2.4 s`` / ``failed: …``, and why."""

    STYLE_PREFIX = "status"
    STYLE_NAMES = (*(s.value for s in State), "detail")

    data: reactive[tuple[State, str, str] | None] = reactive(None)

    def render(self) -> Text:
        if self.data is None:
            return Text("")
        state, status, detail = self.data
        styles = self.text_styles
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(f"{STATE_ICONS.get(state, '?')} {status}", get(styles, state.value))
        if detail:
            text.append(f"  {detail}", get(styles, "detail"))
        return text


@dataclass(frozen=True, slots=True)
class CounterData:
    """The counters of a pane (its channels without their chart series)."""

    channels: tuple[ChannelModel, ...]
    connects: int
    reconnects: int
    downtime_s: float

    @classmethod
    def of(cls, pane: PaneModel) -> CounterData:
        bare = tuple(replace(c, latency=(), arrivals=()) for c in pane.channels)
        return cls(bare, pane.connects, pane.reconnects, pane.downtime_s)


COUNTER_STYLES = ("label", "value", "bad", "warn", "reset", "muted", "channel")


#: Below this width (cells) counters use short labels and drop the connect count.
COMPACT_WIDTH = 50


def counter_groups(data: CounterData, styles: Styles = NO_STYLES, compact: bool = False) -> list[list[Text]]:
    """The counters as groups of items; each group starts a new line."""

    def item(label: str, value: object, style: str = "value") -> Text:
        return Text.assemble((f"{label}\u00a0", get(styles, "label")), (str(value), get(styles, style)))

    def flag(count: float, style: str) -> str:
        return style if count else "value"

    groups: list[list[Text]] = []
    multi = len(data.channels) > 1
    for ch in data.channels:
        items = [Text(f"{ch.name}:", get(styles, "channel"))] if multi else []
        items += [item("deliv" if compact else "delivered", ch.delivered), item("lost", ch.lost, flag(ch.lost, "bad"))]
        optional = (
            ("behind", ch.behind, "muted"),
            ("reset", ch.lost_to_reset, "reset"),
            ("dup", ch.duplicates, "warn"),
            ("ooo", ch.out_of_order, "warn"),
        )
        # Short of space, a zero that says nothing unusual is left out.
        items += [item(label, n, flag(n, style)) for label, n, style in optional if n or not compact]
        items += [
            item("p50", f"{format_ms(ch.p50_ms)}ms"),
            item("p99", f"{format_ms(ch.p99_ms)}ms"),
            item("rx", f"{ch.rate:.0f}/s"),
        ]
        groups.append(items)
    connection = [
        item("reconn" if compact else "reconnects", data.reconnects, flag(data.reconnects, "warn")),
        item("down", f"{data.downtime_s:.1f}s", flag(data.downtime_s, "warn")),
    ]
    if compact and groups:
        groups[-1].extend(connection)  # no line of its own when space is short
    elif compact:  # no channels yet: the session is still reaching its server
        groups.append(connection)
    else:
        groups.append([item("connects", data.connects), *connection])
    return groups


class Counters(TextStyles):
    """Delivered, lost, behind, reset, duplicates, out of order, p50/p99, connects, downtime."""

    STYLE_PREFIX = "counters"
    STYLE_NAMES = COUNTER_STYLES

    data: reactive[CounterData | None] = reactive(None)

    def __init__(self, *, classes: str | None = None) -> None:
        super().__init__(classes=classes)
        self._cache: tuple[CounterData | None, int, list[Text]] = (None, 0, [])

    def _lines(self, width: int) -> list[Text]:
        """The laid-out lines (kept for the latest data and width: asked for 3× a frame)."""
        if self.data is None:
            return []
        data, cached_width, lines = self._cache
        if data is not self.data or cached_width != width:
            groups = counter_groups(self.data, self.text_styles, compact=width < COMPACT_WIDTH)
            lines = flow(groups, max(10, width))
            self._cache = (self.data, width, lines)
        return lines

    def watch_data(self, old: CounterData | None, new: CounterData | None) -> None:
        if not self.size.width:  # hidden (another pane is zoomed): laid out when shown
            return
        if old is None or new is None or len(self._lines(self.size.width)) != self.size.height:
            self.refresh(layout=True)  # the line count changed: the pane lays out again

    def get_content_height(self, container: object, viewport: object, width: int) -> int:  # type: ignore[override]
        return max(1, len(self._lines(width)))

    def render(self) -> Text:
        return Text("\n").join(self._lines(self.size.width))


LOG_KINDS = ("retry", "down", "failed", "reset", "open", "fault")


def log_line(line: LogLine, styles: Styles = NO_STYLES) -> Text:
    """``  12.3s server closed the stream → retry in 0.1 s (retry: field) ×3``"""
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(f"{line.at_s:6.1f}s ", get(styles, "time"))
    text.append(line.text, get(styles, line.kind))
    if line.repeat > 1:
        text.append(f" ×{line.repeat}", get(styles, "repeat"))
    return text


class RetryLog(TextStyles):
    """The newest retry decisions that fit, oldest at the top."""

    STYLE_PREFIX = "log"
    STYLE_NAMES = (*LOG_KINDS, "time", "repeat")

    lines: reactive[tuple[LogLine, ...]] = reactive(())

    def render(self) -> Text:
        styles = self.text_styles
        shown = self.lines[-self.size.height :] if self.size.height > 0 else ()
        if not shown:
            return Text("no retries yet", get(styles, "time"))
        return Text("\n").join(log_line(line, styles) for line in shown)


class TransportPane(Vertical):
    """A transport's pane: fed a :class:`PaneModel`, it updates its parts."""

    model: reactive[PaneModel | None] = reactive(None, repaint=False)

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

    def compose(self) -> ComposeResult:
        yield self._status
        yield self._chart
        yield self._counters
        yield self._log

    def watch_model(self, model: PaneModel | None) -> None:
        if model is None or not self.is_mounted:
            return
        self._status.data = (model.state, model.status, model.detail)
        series = tuple(Series(c.name, c.latency, c.arrivals) for c in model.channels)
        self._chart.data = ChartData(series, model.marks)
        self._counters.data = CounterData.of(model)
        self._log.lines = model.log
        for state in State:
            self.set_class(model.state is state, f"-{state.value}")
        self.set_class(len(model.channels) > 1, "-multi")
