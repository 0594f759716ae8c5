"""The one-line bars above the panes: status, active faults, fault keys with their amounts."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.reactive import reactive

from rtplay.protocol.faults import ALL, Kind
from rtplay.tui.controls import FAULT_KEYS, Amounts
from rtplay.tui.lines import TextLines
from rtplay.tui.model import PAUSED, PLAYING, format_rate
from rtplay.tui.styles import NO_STYLES, Styles, get
from rtplay.tui.textflow import flow


@dataclass(frozen=True, slots=True)
class StatusData:
    """What the status bar shows."""

    rate: float
    published: int
    elapsed_s: float
    selected: str
    url: str = ""
    ui_hz: float | None = None
    """Frames per second the screen timer really achieved (live sessions only)."""
    lag_ms: float | None = None
    """How late the screen timer fired, worst of the last seconds (live sessions only)."""
    overloaded: tuple[str, ...] = ()
    """Which side's event loop is overloaded now (``server``, ``client``): figures unreliable."""


def short_url(url: str) -> str:
    """``http://127.0.0.1:8081/control`` as ``127.0.0.1:8081`` (the compact header's form)."""
    return url.split("://", 1)[-1].removesuffix("/").removesuffix("/control")


def status_segments(d: StatusData, compact: bool = False) -> list[tuple[int, str, str]]:
    """(priority, text, style name) of each part of the status bar; 0 is kept longest.
    ``compact`` says the same in fewer cells (an 80-column terminal)."""
    rate = f"{PAUSED} paused" if d.rate <= 0 else f"{PLAYING} {format_rate(d.rate)}"
    parts = [(0, " rtplay" if compact else " rtplay ", "brand"), (0, f"  {rate}", "rate")]
    if d.overloaded:  # kept longest: every figure on screen depends on it
        parts.insert(1, (0, overload_notice(d.overloaded), "overloaded"))
    if d.url:
        parts.append((1, f"  {short_url(d.url) if compact else d.url}", "muted"))
    parts.append((2, f"  sel {'all' if d.selected == ALL else d.selected}", "selection"))
    parts.append((3, f"  {'pub' if compact else 'published'} {d.published}", ""))
    parts.append((3, f"  {d.elapsed_s:.0f} s", ""))
    if d.ui_hz is not None and d.lag_ms is not None:
        ui = f"ui {d.ui_hz:.0f}Hz lag {d.lag_ms:.0f}ms" if compact else f"ui {d.ui_hz:.0f} Hz lag {d.lag_ms:.0f} ms"
        parts.append((4, f"  {ui}", "muted"))
    return parts


def overload_notice(sides: tuple[str, ...], short: bool = False) -> str:
    """`` client overloaded: figures unreliable ``; ``short``: `` server+client overloaded ``."""
    if short:
        return f" {'+'.join(sides)} overloaded "
    return f" {' + '.join(sides)} overloaded: figures unreliable "


def status_line(d: StatusData, width: int, styles: Styles = NO_STYLES) -> Text:
    """The status bar for ``width`` cells: every part if it fits, else every part in its
    compact form, and only then the least needed parts go, whole (an overload notice takes
    its short form before the selection goes); never the URL's end."""
    parts = status_segments(d)
    if sum(len(t) for _, t, _ in parts) > width:
        parts = status_segments(d, compact=True)
    full = overload_notice(d.overloaded)
    short = [(p, overload_notice(d.overloaded, short=True) if t == full else t, s) for p, t, s in parts]
    # the brand, rate and URL (priority 0-1) always stay
    tries = [(parts, 5), (parts, 4), (parts, 3), (short, 5), (short, 4), (short, 3), (short, 2)]
    for candidate, drop in tries if d.overloaded else [(parts, drop) for drop in (5, 4, 3, 2)]:
        kept = [p for p in candidate if p[0] < drop]
        if sum(len(t) for _, t, _ in kept) <= width:
            break
    text = Text(no_wrap=True, overflow="ellipsis")
    for _, part, style in kept:
        text.append(part, get(styles, style))
    return text


class StatusBar(TextLines):
    """`` rtplay  ▶ 100 msg/s  http://…  sel all  published 1234  42 s  ui 10 Hz lag 1 ms``;
    on a narrow terminal the last parts are left out whole, so the URL is never cut."""

    STYLE_PREFIX = "status-bar"
    STYLE_NAMES = ("brand", "rate", "muted", "selection", "overloaded")

    data: reactive[StatusData | None] = reactive(None, repaint=False)

    def watch_data(self) -> None:
        self.repaint_lines()

    def render(self) -> Text:
        if self.data is None:
            return Text("starting…", get(self.text_styles, "muted"))
        return status_line(self.data, self.size.width, self.text_styles)


@dataclass(frozen=True, slots=True)
class Notice:
    """A short message in the fault bar (what a key did, a warning from the engine)."""

    text: str
    severity: str = "information"
    """``information``, ``warning`` or ``error`` (picks the colour)."""


class FaultBar(TextLines):
    """Every active fault, always visible, and the latest notice at the right end, where it
    covers no pane."""

    STYLE_PREFIX = "fault-bar"
    STYLE_NAMES = ("label", "label-active", "fault", "muted", "information", "warning", "error")

    faults: reactive[tuple[str, ...]] = reactive(())
    notice: reactive[Notice | None] = reactive(None)

    def render(self) -> Text:
        s = self.text_styles
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(" faults ", get(s, "label-active" if self.faults else "label"))
        if not self.faults:
            text.append("  none active", get(s, "muted"))
        for i, fault in enumerate(self.faults):
            text.append("  " if i == 0 else "  ·  ")
            text.append(fault, get(s, "fault"))
        if self.notice is None:
            return text
        notice = Text(f" {self.notice.text} ", get(s, self.notice.severity), no_wrap=True)
        width = self.size.width
        room = width - notice.cell_len - 2
        if room < 12:  # a long notice: it has the line to itself for its few seconds
            notice.truncate(width, overflow="ellipsis")
            return notice
        text.truncate(room, overflow="ellipsis")
        text.pad_right(width - text.cell_len - notice.cell_len)
        return text + notice


@dataclass(frozen=True, slots=True)
class FaultKeysData:
    """What the fault keyboard shows: amounts, the armed one, which are on."""

    amounts: tuple[tuple[Kind, str], ...]
    """(kind, next amount label) for every fault key ("" for faults without an amount)."""
    armed: Kind
    on: frozenset[Kind]
    """Kinds active on the selected scope: their keys show as on."""
    unavailable: frozenset[Kind] = frozenset()
    """Kinds that cannot apply in this session (target mode with --direct): struck through."""

    @classmethod
    def of(
        cls, amounts: Amounts, active: frozenset[tuple[str, str]], scope: str, unavailable: frozenset[str] = frozenset()
    ) -> FaultKeysData:
        """The keyboard for the amounts, the active (kind, scope) pairs and the selection."""
        on = frozenset(fk.kind for fk in FAULT_KEYS if (fk.kind.value, scope) in active)
        off = frozenset(fk.kind for fk in FAULT_KEYS if fk.kind.value in unavailable)
        return cls(tuple((fk.kind, amounts.label(fk.kind)) for fk in FAULT_KEYS), amounts.armed, on, off)


class FaultKeys(TextLines):
    """The fault keyboard: ``d drop  s stall  l delay 200ms  e error 503 …``; a fault that is
    on for the selection is highlighted, and the armed amount (what +/- change) underlined.
    Optional keys (reorder, duplicate) show where they need no row of their own, or when on
    or armed; the help lists them all."""

    STYLE_PREFIX = "fault-keys"
    STYLE_NAMES = ("key", "on", "armed")

    data: reactive[FaultKeysData | None] = reactive(None, layout=True)

    def _lines(self, width: int) -> list[Text]:
        if self.data is None:
            return []
        s = self.text_styles
        keys = {fk.kind: fk.key for fk in FAULT_KEYS}
        optional = {fk.kind for fk in FAULT_KEYS if fk.optional} - self.data.on - {self.data.armed}
        items, needed = [], []
        for kind, amount in self.data.amounts:
            on = kind in self.data.on
            name_style = get(s, "on") if on else "dim strike" if kind in self.data.unavailable else get(s, "")
            item = Text.assemble((keys[kind], get(s, "key")), " ", (kind.value, name_style))
            if amount:
                item.append(" ")
                item.append(amount, get(s, "armed") if kind is self.data.armed else get(s, ""))
            items.append(item)
            if kind not in optional:
                needed.append(item)
        every, fewer = flow([items], max(10, width - 1)), flow([needed], max(10, width - 1))
        return every if len(every) <= len(fewer) else fewer  # optional keys take no row of their own

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max(1, len(self._lines(width)))

    def render(self) -> Text:
        return Text("\n").join(Text(" ") + line for line in self._lines(self.size.width))
