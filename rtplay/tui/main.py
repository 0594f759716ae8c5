"""The main screen: a pane per transport, the fault bars, and every playground key.

The screen owns the keys; the backend owns the work. A 10 Hz timer pulls one frame from
the backend and pushes it down into the panes: the engine's message rate never reaches the
UI (no per-message events, no per-message repaint).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Grid
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer

from rtplay.engine.control_client import ControlError
from rtplay.protocol.faults import ALL, TRANSPORTS, Kind
from rtplay.tui.actions import bindings
from rtplay.tui.backend import Backend
from rtplay.tui.bars import FaultBar, FaultKeys, FaultKeysData, Notice, StatusBar, StatusData
from rtplay.tui.compare import CompareScreen
from rtplay.tui.controls import DEFAULT_RESUME_RATE, Amounts, next_rate
from rtplay.tui.crowd import CrowdScreen
from rtplay.tui.faultlist import FaultListScreen
from rtplay.tui.footer import KeyFooter
from rtplay.tui.model import Dashboard, format_rate
from rtplay.tui.panes import TransportPane
from rtplay.tui.styles import Palette
from rtplay.tui.views import HelpScreen, InfoScreen

log = logging.getLogger(__name__)

#: Frames per second. 10 Hz keeps countdowns and counters live at a small cost; charts
#: only repaint when a new sample (every 0.5 s) arrives.
TICK_HZ = 10

#: Frames between two drawings of one pane. At 10 frames a second a pane's counters and
#: countdown move five times a second, which a reader follows as well, and its chart shows
#: a new sample (every 0.5 s) within 0.1 s; each frame draws half the panes, the largest
#: part of a frame's work, so no frame draws them all. A change of state shows at once.
PANE_FRAMES = 2

#: Below this many rows the panes take their compact form: six full panes need ~40 rows,
#: six compact ones fit in 24.
COMPACT_HEIGHT = 32

#: Rows of a compact pane: below that the grid scrolls instead of squeezing the panes.
MIN_PANE_ROWS = 6

#: Columns a pane needs for its counter rows (``delivered 12345 lost 0 …``) uncut. Two
#: panes side by side need twice that (plus the gutter): below, one pane per row, and the
#: grid scrolls (``-tiny``).
MIN_PANE_COLUMNS = 36

#: Terminal widths where the grid changes its number of columns (Textual breakpoints).
TWO_COLUMNS_FROM = 2 * MIN_PANE_COLUMNS + 2
THREE_COLUMNS_FROM = 100

#: Seconds a notice stays in the fault bar.
NOTICE_S = 3.0

#: Seconds of timer lateness kept for the status bar's "lag" (its worst value is shown).
LAG_WINDOW_S = 5.0


class TimerLag:
    """How late the screen's timer fires: a measure of event-loop lag, from times passed in."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last: float | None = None
        self._lags: deque[tuple[float, float]] = deque(maxlen=int(LAG_WINDOW_S * TICK_HZ * 2))
        self._ticks: deque[float] = deque(maxlen=TICK_HZ * 4)

    def tick(self, now: float) -> None:
        """The timer fired at ``now``."""
        if self._last is not None:
            self._lags.append((now, max(0.0, now - self._last - self.interval)))
        self._last = now
        self._ticks.append(now)

    def lag_ms(self, now: float) -> float:
        """The worst lateness in the last :data:`LAG_WINDOW_S` seconds, in ms."""
        return max((lag for t, lag in self._lags if now - t <= LAG_WINDOW_S), default=0.0) * 1000

    def hz(self, now: float) -> float:
        """Ticks in the last second."""
        return float(sum(1 for t in self._ticks if now - t <= 1.0))


class MainScreen(Screen[None]):
    """Panes, fault bars, and the keyboard."""

    BINDINGS: ClassVar[list[BindingType]] = bindings()  # type: ignore[assignment]  # Textual types BINDINGS as a plain list
    HORIZONTAL_BREAKPOINTS = [(0, "-tiny"), (TWO_COLUMNS_FROM, "-narrow"), (THREE_COLUMNS_FROM, "-wide")]

    selected: reactive[str] = reactive(ALL)
    """The transport faults apply to, or ``all``."""
    zoomed: reactive[bool] = reactive(False)
    """One pane full-screen instead of the grid."""

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend
        self.amounts = Amounts()
        self.monitor = TimerLag(1 / TICK_HZ)
        self.frame: Dashboard | None = None
        self._resume_rate = backend.rate or DEFAULT_RESUME_RATE
        self._panes = {name: TransportPane(name, i + 1) for i, name in enumerate(backend.transports)}
        self._status = StatusBar(id="status")
        self._faults = FaultBar(id="faults")
        self._fault_keys = FaultKeys(id="fault-keys")
        self._notice_timer: Timer | None = None
        self.frame_timer: Timer | None = None
        """The frame timer (tests pause it to draw frames one by one)."""
        self._frames = 0

    @property
    def frames_shown(self) -> int:
        """Frames the frame timer has shown since the screen mounted (a benchmark's frame rate)."""
        return self._frames

    @classmethod
    def for_transports(cls, count: int) -> type[MainScreen]:
        """The screen class for ``count`` panes: its keys and footer say ``1-count``."""
        if count == len(TRANSPORTS):
            return cls
        return type(cls.__name__, (cls,), {"BINDINGS": bindings(count), "__doc__": cls.__doc__})

    # --- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Palette()
        yield self._status
        yield self._faults
        yield self._fault_keys
        with Grid(id="grid", classes=f"-n{len(self._panes)}"):
            yield from self._panes.values()
        yield KeyFooter()

    def on_mount(self) -> None:
        self.frame_timer = self.set_interval(1 / TICK_HZ, self.tick)
        self.show_frame()

    def on_resize(self) -> None:
        self._update_compact()

    def on_screen_resume(self) -> None:
        """Back from a view that covered the panes: show the latest frame at once."""
        if self.frame_timer is not None:
            self.show_frame()

    def _update_compact(self) -> None:
        """A short terminal gets the compact pane form, so every pane fits on one screen
        (a zoomed pane has the screen to itself: it keeps the full form)."""
        compact = self.size.height < COMPACT_HEIGHT and not self.zoomed
        for pane in self.panes:
            pane.compact = compact
        self.call_after_refresh(self._fit_rows)

    def _fit_rows(self) -> None:
        """When even compact panes do not fit, they keep their height and the grid scrolls."""
        grid = self.query_one("#grid")
        columns = grid.styles.grid_size_columns or 1
        needed = math.ceil(len(self.panes) / columns) * MIN_PANE_ROWS
        grid.set_class(not self.zoomed and grid.size.height < needed, "-overflow")

    def say(self, text: str, severity: str = "information", timeout: float = NOTICE_S) -> None:
        """Show a notice in the fault bar for ``timeout`` seconds (it covers no pane)."""
        self._faults.notice = Notice(text, severity)
        if self._notice_timer is not None:
            self._notice_timer.stop()
        self._notice_timer = self.set_timer(timeout, self._clear_notice)

    def _clear_notice(self) -> None:
        self._faults.notice = None
        self._notice_timer = None

    @property
    def panes(self) -> list[TransportPane]:
        return list(self._panes.values())

    # --- the frame timer ----------------------------------------------------------------------

    def tick(self) -> None:
        """The frame timer: measure its own lateness, then show a new frame."""
        self.monitor.tick(time.monotonic())
        self._frames += 1
        self.show_frame(turn=self._frames % PANE_FRAMES)

    def show_frame(self, turn: int | None = None) -> None:
        """Pull one frame from the backend and hand it down (also right after a key).
        ``turn``: only panes whose number is that modulo :data:`PANE_FRAMES` are drawn
        (None: all of them, as after a key), and those whose state changed."""
        now = time.monotonic()
        frame = self.backend.dashboard(now)  # also when covered: the charts keep sampling
        self.frame = frame
        if self.app.screen is not self and not self.app.screen.is_modal:
            return  # another view covers the panes: drawn again when it closes
        for model in frame.panes:
            pane = self._panes.get(model.transport)
            if pane is not None:
                pane.show(model, due=turn is None or pane.index % PANE_FRAMES == turn)
        live = self.backend.live
        self._status.data = StatusData(
            frame.rate,
            frame.published,
            frame.elapsed_s,
            self.selected,
            frame.url,
            self.monitor.hz(now) if live else None,
            self.monitor.lag_ms(now) if live else None,
            frame.overloaded,
        )
        self._faults.faults = frame.faults
        self._update_fault_keys()

    def _update_fault_keys(self) -> None:
        active = self.frame.active_kinds if self.frame else frozenset()
        unavailable = self.frame.unavailable if self.frame else frozenset()
        self._fault_keys.data = FaultKeysData.of(self.amounts, active, self.selected, unavailable)

    def watch_selected(self, selected: str) -> None:
        for pane in self.panes:
            pane.set_class(pane.transport == selected, "-selected")
        self.query_one("#grid").set_class(selected == ALL, "-all")
        if selected != ALL:
            self._panes[selected].scroll_visible()
        self._update_fault_keys()

    def watch_zoomed(self, zoomed: bool) -> None:
        self.query_one("#grid").set_class(zoomed, "-zoomed")
        self._update_compact()

    # --- actions --------------------------------------------------------------------------------

    def action_select(self, number: int) -> None:
        """Select pane ``number`` (1-based), or all with 0."""
        if number == 0:
            self.selected = ALL
            self.zoomed = False
        elif number <= len(self.panes):
            self.selected = self.panes[number - 1].transport
        else:
            self.say(f"there is no pane {number}", "warning")

    async def action_fault(self, kind_name: str) -> None:
        """Toggle fault ``kind_name`` on the selection."""
        kind = Kind(kind_name)
        self.amounts.arm(kind)
        try:
            said = await self.backend.toggle_fault(kind, self.selected, self.amounts.value(kind))
        except ValueError as exc:
            self.say(f"{kind.value} not applied: {exc}", "error", timeout=5)
        except ControlError as exc:
            self.say(f"the server did not answer: {exc}", "error", timeout=5)
        else:
            self.say(said)
        self.show_frame()

    def action_amount(self, kind_name: str) -> None:
        """Cycle the next ``kind_name`` fault's amount."""
        self.amounts.cycle(Kind(kind_name))
        self._update_fault_keys()

    def action_step_amount(self, step: int) -> None:
        """Step the armed fault's amount up or down."""
        self.amounts.cycle(self.amounts.armed, step)
        self._update_fault_keys()

    async def action_clear_faults(self) -> None:
        try:
            cleared = await self.backend.clear_faults()
        except ControlError as exc:
            self.say(f"the server did not answer: {exc}", "error", timeout=5)
            return
        self.say(f"cleared {cleared} fault{'s' * (cleared != 1)}")
        self.show_frame()

    def action_reset_counters(self) -> None:
        """Zero every figure (the whole-run ones, the last-10-s ones, the fault records)."""
        self.backend.reset_counters()
        self.say("counters reset", timeout=2)
        self.show_frame()

    def action_restart(self) -> None:
        """Start the selected failed client(s) again, as a page reload would."""
        names = self.backend.transports if self.selected == ALL else [self.selected]
        restarted = self.backend.restart(names)
        rows = getattr(self.app, "browser_rows", None)
        if rows is not None:  # the browser's rows too, in a worker: the page is another process
            self.run_worker(self._restart_browser(rows, names, restarted), group="browser-restart")
            return
        self._said_restart(restarted)

    async def _restart_browser(self, rows: Any, names: list[str], restarted: list[str]) -> None:
        try:
            in_browser = await rows.restart_failed(names)
        except Exception as exc:  # the browser closed meanwhile: say so, keep the app
            log.warning("browser restart failed: %s", exc)
            in_browser = []
        self._said_restart(restarted + [f"browser {n}" for n in in_browser])

    def _said_restart(self, restarted: list[str]) -> None:
        text = f"restarted {', '.join(restarted)}" if restarted else "nothing to restart: no failed client selected"
        self.say(text)
        self.show_frame()

    def action_policy(self) -> None:
        """The selected client(s) decide their next waits by the next retry policy."""
        names = self.backend.transports if self.selected == ALL else [self.selected]
        said = self.backend.cycle_policy(names)
        self.say("; ".join(said) or "no retry policy here (poll polls on its interval)", timeout=3)
        self.show_frame()

    def action_crowd(self) -> None:
        session = getattr(self.backend, "session", None)
        if session is None or not session.config.crowd:
            self.say("no crowd: start the playground with --clients N", "warning", timeout=3)
            return
        self.app.push_screen(CrowdScreen(session))

    async def action_rate(self, step: int) -> None:
        """Publish faster (``step`` 1) or slower (-1) through 1/10/100/1000 msg/s; the ends stay."""
        rate = next_rate(self.backend.rate, step)
        if rate == self.backend.rate:
            self.say(f"already publishing {format_rate(rate)}: the {'fastest' if step > 0 else 'slowest'} rate")
            return
        await self._set_rate(rate)

    async def action_pause(self) -> None:
        """Pause publishing (rate 0), or resume at the rate before the pause."""
        if self.backend.rate > 0:
            self._resume_rate = self.backend.rate
            await self._set_rate(0)
        else:
            await self._set_rate(self._resume_rate)

    async def _set_rate(self, rate: float) -> None:
        try:
            await self.backend.set_rate(rate)
        except ControlError as exc:
            self.say(f"the server did not answer: {exc}", "error", timeout=5)
            return
        except ValueError as exc:  # target mode: the target's rate is its own
            self.say(f"rate not changed: {exc}", "error", timeout=5)
            return
        self.say(f"publishing {format_rate(rate)}")
        self.show_frame()

    def action_zoom(self) -> None:
        """One pane full-screen (the selected one), or back to the grid."""
        if not self.zoomed and self.selected == ALL:
            self.selected = self.panes[0].transport
        self.zoomed = not self.zoomed

    def action_info(self) -> None:
        first = self.selected if self.selected != ALL else self.panes[0].transport
        self.app.push_screen(InfoScreen(first))

    def action_compare(self) -> None:
        self.app.push_screen(CompareScreen(self.backend))

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen([pane.transport for pane in self.panes]))

    def action_faults(self) -> None:
        """The active faults, one per line, with a key to clear the one under the cursor."""
        self.app.push_screen(
            FaultListScreen(lambda: self.frame.fault_rows if self.frame else (), self.clear_fault, self.say)
        )

    async def clear_fault(self, fault_id: int) -> None:
        """Clear one active fault (the fault list's action)."""
        try:
            cleared = await self.backend.clear_fault(fault_id)
        except ControlError as exc:
            self.say(f"the server did not answer: {exc}", "error", timeout=5)
            return
        self.say(f"cleared {cleared}" if cleared else f"fault {fault_id} is no longer active")
        self.show_frame()

    def action_scroll_panes(self, lines: int) -> None:
        """Scroll the panes by ``lines`` (when they do not all fit)."""
        self.query_one("#grid").scroll_relative(y=lines, animate=False)

    def action_page_panes(self, pages: int) -> None:
        """Scroll the panes by a screenful."""
        grid = self.query_one("#grid")
        if pages < 0:
            grid.scroll_page_up(animate=False)
        else:
            grid.scroll_page_down(animate=False)
