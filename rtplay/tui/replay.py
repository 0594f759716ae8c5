"""``rtplay replay LOG.jsonl``: the playground on a recorded run instead of live clients.

:class:`ReplayBackend` is a :class:`~rtplay.tui.backend.Backend` whose frames come from a
:class:`~rtplay.report.playback.Playback` of the log: the same panes, charts and counters,
computed by the same accounting. The charts are sampled every :data:`SAMPLE_S` of the *run's*
clock, so a frame at a moment is the same whether one played, paused or seeked to it (going
back starts again from the first record). :class:`ReplayScreen` is the main screen with the
player's keys: ``space`` pause, ``←``/``→`` seek 5 s, ``[``/``]`` halve/double the speed, ``f``
the next fault. The status bar says REPLAY, the run's clock and the speed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual.binding import Binding, BindingType

from rtplay.clients import CLIENT_CLASSES
from rtplay.engine.message_log import read_log
from rtplay.protocol.faults import TRANSPORTS, Kind
from rtplay.report.playback import (
    FaultSpan,
    Layout,
    Playback,
    PlayClock,
    TransportPlayback,
)
from rtplay.tui.actions import bindings
from rtplay.tui.backend import LOG_TAIL
from rtplay.tui.history import (
    MARK_DOWN,
    MARK_FAILED,
    MARK_FAULT,
    MARK_FAULT_END,
    MARK_RESET,
    MARK_UP,
    MAX_LOG_LINES,
    SAMPLE_S,
    ChannelHistory,
    TransportHistory,
)
from rtplay.tui.main import MainScreen
from rtplay.tui.model import (
    PAUSED,
    PLAYING,
    ChannelModel,
    Dashboard,
    FaultRow,
    LogLine,
    PaneModel,
    status_of,
)
from rtplay.tui.views import HelpScreen

log = logging.getLogger(__name__)

#: Seconds ``←`` / ``→`` move the playback.
SEEK_S = 5.0

READ_ONLY = "a replay plays what was recorded: faults, rate and clients cannot be changed"


def layouts() -> dict[str, Layout]:
    """Each transport's channels (resumable first) and unreliable ones, from its client class."""
    return {name: Layout(cls.channels, cls.unreliable_channels) for name, cls in CLIENT_CLASSES.items()}


def _fault_row(span: FaultSpan, t: float) -> FaultRow:
    words = span.text.rsplit(" on ", 1)[0].split(" ", 1)
    left = None if span.end is None else max(0.0, span.end - t)
    return FaultRow(span.id, words[0], span.scope, words[1] if len(words) > 1 else "", left)


class ReplayBackend:
    """Frames of a recorded run at the player's position; commands are refused (read-only)."""

    live = False

    def __init__(self, records: Sequence[Mapping[str, Any]], source: str, now: float, speed: float = 1.0) -> None:
        self.playback = Playback(records, layouts())
        self.clock = PlayClock(self.playback.end_at, now, speed)
        self.source = source
        stopped = self.playback.end.get("cutoff") or self.playback.end_at
        self.run_rate = round(int(self.playback.end.get("published") or 0) / stopped, 1) if stopped else 0.0
        """The run's publish rate (its messages over its publishing time)."""
        self._rebuild()

    # --- playback -------------------------------------------------------------------------

    def _rebuild(self) -> None:
        self.playback.rewound()
        self.histories = {n: TransportHistory(self.playback.clients[n].layout.channels) for n in self.transports}
        self.logs: dict[str, deque[LogLine]] = {n: deque(maxlen=MAX_LOG_LINES) for n in self.transports}
        self._next_sample = SAMPLE_S

    def advance(self, t: float) -> None:
        """Play up to ``t`` seconds of the run, sampling the charts on the run's clock."""
        if t < self.playback.position:
            self._rebuild()
        while self._next_sample <= t:
            self._consume(self.playback.advance_to(self._next_sample))
            self._sample()
            self._next_sample += SAMPLE_S
        self._consume(self.playback.advance_to(t))

    def _sample(self) -> None:
        for name, client in self.playback.clients.items():
            history = self.histories[name]
            for channel, stats in client.stats.items():
                hist = history.channels.setdefault(channel, ChannelHistory())
                hist.sample(stats.tracker.delivered, stats.take_window_max_ms(), SAMPLE_S)
            history.close_sample()

    def _consume(self, records: list[Mapping[str, Any]]) -> None:
        for rec in records:
            ev, at = rec["ev"], float(rec["at"])
            if ev in ("fault_started", "fault_ended"):
                self._fault(rec, ev == "fault_started", at)
                continue
            name = str(rec.get("tr"))
            line = self._line(rec, at)
            if line is not None:
                self._log(name, line[0], line[1])

    def _line(self, rec: Mapping[str, Any], at: float) -> tuple[LogLine, str] | None:
        ev = rec["ev"]
        if ev == "up":
            again = int(rec.get("conn") or 0) > 1
            return LogLine(at, f"{'reconnected' if again else 'connected'} (since={rec.get('since')})", "open"), \
                MARK_UP if again else ""
        if ev == "down":
            return LogLine(at, "connection lost or attempt failed", "down", brief=("connection lost",)), MARK_DOWN
        if ev == "failed":
            return LogLine(at, "failed — no retry", "failed"), MARK_FAILED
        if ev == "reset":
            where = "" if rec.get("ch") == "main" else f" on {rec.get('ch')}"
            text = f"reset{where}: seqs before {rec.get('first')} gone"
            return LogLine(at, text, "reset", brief=(f"reset: seqs before {rec.get('first')} gone",)), MARK_RESET
        return None

    def _fault(self, rec: Mapping[str, Any], started: bool, at: float) -> None:
        if not started and rec.get("one_shot"):
            return
        text = f"fault: {rec.get('text')}" if started else f"fault over: {rec.get('text')}"
        scope = rec.get("scope", "all")
        for name in self.transports:
            if scope in ("all", name):
                self._log(name, LogLine(at, text, "fault"), MARK_FAULT if started else MARK_FAULT_END)

    def _log(self, name: str, line: LogLine, mark: str) -> None:
        if name not in self.logs:
            return
        lines = self.logs[name]
        if lines and lines[-1].text == line.text:
            lines[-1] = replace(line, repeat=lines[-1].repeat + 1)
        else:
            lines.append(line)
        if mark:
            self.histories[name].mark(mark)

    # --- the player's keys -------------------------------------------------------------------

    def toggle_pause(self, now: float) -> str:
        return "paused" if self.clock.toggle_pause(now) else "playing"

    def seek_by(self, seconds: float, now: float) -> str:
        return f"at {self.clock.seek(self.clock.position(now) + seconds, now):.1f} s"

    def scale_speed(self, factor: float, now: float) -> str:
        return f"speed {self.clock.scale(factor, now):g}×"

    def next_fault(self, now: float) -> str:
        span = self.playback.next_fault_after(self.clock.position(now))
        if span is None:
            return "no fault after this point"
        self.clock.seek(span.start, now)
        return f"fault #{span.id} {span.text} at {span.start:.1f} s"

    # --- frames -------------------------------------------------------------------------------

    @property
    def transports(self) -> list[str]:
        return list(self.playback.transports)

    @property
    def rate(self) -> float:
        return 0.0 if self.clock.paused else self.run_rate

    def header(self, t: float) -> str:
        """``REPLAY ▶ 1× · run clock 12.3 / 30.5 s · run.jsonl`` (the status bar's URL place)."""
        state = PAUSED if self.clock.paused else PLAYING
        return (f"REPLAY {state} {self.clock.speed:g}× · run clock {t:.1f} / {self.playback.end_at:.1f} s"
                f" · {self.source}")

    def dashboard(self, now: float) -> Dashboard:
        """The frame at the player's position for wall time ``now``."""
        return self.frame_at(self.clock.position(now))

    def frame_at(self, t: float) -> Dashboard:
        """The frame ``t`` seconds into the run."""
        self.advance(t)
        t = self.playback.now()
        return Dashboard(
            panes=tuple(self._pane(i + 1, n, c, t) for i, (n, c) in enumerate(self.playback.clients.items())),
            fault_rows=tuple(_fault_row(f, t) for f in self.playback.active_faults(t)),
            rate=self.rate,
            published=int(self.playback.end["published"]) if self.playback.at_end else self.playback.published,
            elapsed_s=t,
            url=self.header(t),
        )

    def _pane(self, index: int, name: str, client: TransportPlayback, t: float) -> PaneModel:
        view = self.playback.view_of(name)
        status, detail = status_of(client.state, f"since={client.cursor}", None, t)
        history = self.histories[name]
        channels = tuple(self._channel(ch, client, history, view, t) for ch in client.layout.channels)
        return PaneModel(
            transport=name, index=index, state=client.state, status=status, detail=detail, channels=channels,
            connects=client.conn.connects, reconnects=client.conn.reconnects,
            downtime_s=round(client.conn.downtime(t), 1), marks=tuple(history.marks),
            log=tuple(self.logs[name])[-LOG_TAIL:],
        )

    @staticmethod
    def _channel(ch: str, client: TransportPlayback, history: TransportHistory, view: Any, t: float) -> ChannelModel:
        stats = client.stats[ch]
        figures = stats.figures(view)
        p50, p99 = stats.latency.percentiles(50, 99)
        r50, r99 = stats.recent.histogram(t).percentiles(50, 99)
        hist = history.channels.get(ch)
        return ChannelModel(
            name=ch, delivered=int(str(figures["delivered"])), lost=int(str(figures["lost"])),
            behind=int(str(figures["pending"])), lost_to_reset=int(str(figures["lost_to_reset"])),
            duplicates=int(str(figures["duplicates"])), out_of_order=int(str(figures["out_of_order"])),
            p50_ms=p50, p99_ms=p99, recent_p50_ms=r50, recent_p99_ms=r99, rate=stats.arrivals.rate(t),
            latency=tuple(hist.latency) if hist else (), arrivals=tuple(hist.arrivals) if hist else (),
        )

    def report(self) -> dict[str, Any]:
        """The figures at the player's position (the compare view)."""
        return {"published": self.playback.published, "duration_s": self.playback.now(),
                "transports": self.playback.report(), "faults": []}

    # --- commands a replay refuses ------------------------------------------------------------

    async def toggle_fault(self, kind: Kind, scope: str, value: float | None) -> str:
        raise ValueError(READ_ONLY)

    async def clear_faults(self) -> int:
        return 0

    async def clear_fault(self, fault_id: int) -> str:
        return ""

    def restart(self, transports: list[str]) -> list[str]:
        return []

    def cycle_policy(self, transports: list[str]) -> list[str]:
        return [READ_ONLY]

    def reset_counters(self) -> None:
        """Counters are the recording's: nothing to reset."""

    async def set_rate(self, rate: float) -> None:
        """The rate is the recording's: pausing is the player's (``space``)."""

    async def start(self) -> None:
        """Nothing to start: the log is read already."""

    async def stop(self) -> None:
        """Nothing to stop."""


#: The player's keys; they take the place of the playground's ``space`` (pause publishing)
#: and ``f`` (the fault list), which a recording has no use for.
PLAYER_BINDINGS: tuple[Binding, ...] = (
    Binding("space", "replay_pause", "pause", key_display="space"),
    Binding("left", "replay_seek(-1)", "-5 s", key_display="←"),
    Binding("right", "replay_seek(1)", "+5 s", key_display="→"),
    Binding("left_square_bracket", "replay_speed(0.5)", "slower", key_display="["),
    Binding("right_square_bracket", "replay_speed(2)", "faster", key_display="]"),
    Binding("f", "replay_fault", "next fault", key_display="f"),
)


#: The player's keys as the help lists them.
PLAYER_HELP: tuple[tuple[str, str], ...] = (
    ("", "[b u]Replay[/] (a recorded run: read-only)"),
    ("space", "pause / play"),
    ("← →", f"seek {SEEK_S:g} s back / forward"),
    ("[ ]", "half / double speed (1/16× to 64×)"),
    ("f", "jump to the next fault"),
)


def player_bindings(panes: int) -> list[BindingType]:
    """The playground's keys for ``panes`` panes, the player's first, minus those it replaces."""
    taken = {b.key for b in PLAYER_BINDINGS}
    kept = [b for b in bindings(panes) if not set(b.key.split(",")) & taken]
    return [*PLAYER_BINDINGS, *kept]


class ReplayScreen(MainScreen):
    """The main screen with the player's keys in place of pause-publishing and the fault list."""

    BINDINGS: ClassVar[list[BindingType]] = player_bindings(len(TRANSPORTS))

    @classmethod
    def for_transports(cls, count: int) -> type[MainScreen]:
        """The screen class for ``count`` panes, keeping the player's keys."""
        return type(cls.__name__, (cls,), {"BINDINGS": player_bindings(count), "__doc__": cls.__doc__})

    def __init__(self, backend: ReplayBackend) -> None:
        super().__init__(backend)
        self.player = backend

    def _said(self, text: str) -> None:
        self.say(text, timeout=2)
        self.show_frame()

    def action_replay_pause(self) -> None:
        """Pause or resume the playback."""
        self._said(self.player.toggle_pause(time.monotonic()))

    def action_replay_seek(self, direction: int) -> None:
        """Seek :data:`SEEK_S` back (-1) or forward (1)."""
        self._said(self.player.seek_by(direction * SEEK_S, time.monotonic()))

    def action_replay_speed(self, factor: float) -> None:
        """Halve or double the speed."""
        self._said(self.player.scale_speed(factor, time.monotonic()))

    def action_replay_fault(self) -> None:
        """Jump to the next fault's start."""
        self._said(self.player.next_fault(time.monotonic()))

    def action_help(self) -> None:
        """The playground's help, the player's keys first."""
        self.app.push_screen(HelpScreen([pane.transport for pane in self.panes], PLAYER_HELP))


def load_replay(path: Path, speed: float = 1.0) -> ReplayBackend:
    """The backend of a recorded run (:class:`ValueError` with the reason when it cannot be played)."""
    return ReplayBackend(read_log(path), path.name, time.monotonic(), speed)


def run_replay(path: Path, speed: float = 1.0) -> int:
    """``rtplay replay``: run the playground on ``path`` until the user quits."""
    from rtplay.tui.app import RtplayApp

    backend = load_replay(path, speed)
    app = RtplayApp(backend=backend, screen=ReplayScreen)
    app.run()
    return app.return_code or 0


