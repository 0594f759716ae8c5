"""Where the screens get their frames and send their commands.

:class:`SessionBackend` drives a real :class:`~rtplay.engine.session.Session`: it listens to the
engine's events (cheap appends, never a repaint), samples every client's counters on the
screen's timer, and turns keys into fault and rate commands. :class:`StaticBackend` serves
a fixed frame, so snapshot tests and demos render without sockets or clocks.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from rtplay.clients.base import Client
from rtplay.engine.session import Session
from rtplay.model.accounting import View
from rtplay.model.channels import ChannelStats
from rtplay.model.events import Event, FaultEnded, FaultStarted, State
from rtplay.protocol.faults import ALL, SERVER_WIDE, UDP_ONLY, Fault, Kind
from rtplay.tui.controls import format_amount, toggle_fault
from rtplay.tui.history import MARK_OVERLOAD, SAMPLE_S, ChannelHistory, EventLog, TransportHistory
from rtplay.tui.model import DETAIL_SEPARATOR, ChannelModel, Dashboard, FaultRow, PaneModel, status_of
from rtplay.tui.policy import cycle_policies, with_policy

log = logging.getLogger(__name__)

#: The transports that carry datagrams: the only ones loss, reorder and duplicate act on.
UDP_TRANSPORTS = ("wt", "rtc")

#: Log lines handed to a pane per frame; a full-screen pane on a tall terminal shows ~20.
LOG_TAIL = 20

#: Seconds between two refreshes of one transport's latency percentiles (the transports take
#: turns). The last-10-s window moves in whole seconds; the whole-run figures barely move.
PERCENTILES_S = 1.0



def count(figures: dict[str, object], key: str) -> int:
    """One of a channel's counts (:meth:`~rtplay.model.channels.ChannelStats.figures`)."""
    value = figures[key]
    return int(value) if isinstance(value, int | float) else 0

class Backend(Protocol):
    """What the screens need: frames to show, a report to compare, commands to send."""

    live: bool
    """True when a real session runs (the screens show loop lag and the server URL)."""

    @property
    def transports(self) -> list[str]:
        """The transports, in pane order."""
        ...

    @property
    def rate(self) -> float:
        """The publish rate now (msg/s; 0 = paused)."""
        ...

    def dashboard(self, now: float) -> Dashboard:
        """One frame at monotonic time ``now``."""
        ...

    def report(self) -> dict[str, Any]:
        """The JSON report (``Session.report()``)."""
        ...

    async def toggle_fault(self, kind: Kind, scope: str, value: float | None) -> str:
        """Start or clear a fault; say what happened; ValueError when it makes no sense."""
        ...

    async def clear_faults(self) -> int:
        """Clear every active fault; return how many."""
        ...

    async def clear_fault(self, fault_id: int) -> str:
        """Clear one active fault; say which ("" when it was no longer active)."""
        ...

    def restart(self, transports: list[str]) -> list[str]:
        """Start failed clients among ``transports`` again; return those restarted."""
        ...

    def cycle_policy(self, transports: list[str]) -> list[str]:
        """Switch each transport's client to the next retry policy; what changed, in words."""
        ...

    def reset_counters(self) -> None:
        """Zero every counter, latency figure and fault record (connections carry on)."""
        ...

    async def set_rate(self, rate: float) -> None:
        """Publish ``rate`` messages per second (0 = pause)."""
        ...

    async def start(self) -> None:
        """Start whatever produces the frames."""
        ...

    async def stop(self) -> None:
        """Stop it; safe to call more than once."""
        ...


class SessionBackend:
    """Frames and commands for a live session."""

    live = True

    def __init__(self, session: Session) -> None:
        self.session = session
        self.histories: dict[str, TransportHistory] = {}
        # Log times count from the launch: events may come before start() returns (a client
        # can connect while the session is still reaching its server process).
        launched = session.clock()
        self.logs = {name: EventLog(launched) for name in session.config.transports}
        self._percentiles: dict[tuple[str, str], tuple[float | None, ...]] = {}
        """(p50, p99, p50 of the last 10 s, p99 of the last 10 s) per (transport, channel)."""
        self._percentiles_turn = 0
        self._percentiles_due = 0.0
        self._last_sample: float | None = None
        self._started = False
        self._stopped = False
        session.subscribe(self.on_event)

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the session (server, clients, publishing)."""
        self._started = True
        await self.session.start()

    async def stop(self) -> None:
        """Stop every client and the server; safe to call more than once."""
        if self._stopped:
            return
        self._stopped = True
        self.session.unsubscribe(self.on_event)
        if self._started:
            await self.session.stop()
            log.info("session stopped")

    # --- events (called synchronously by the engine: keep it cheap) -----------------------

    def on_event(self, event: Event) -> None:
        """Log ``event`` in its pane(s) and mark the chart: appends only, no repaint."""
        if isinstance(event, FaultStarted | FaultEnded) and event.transport == ALL:
            names = [name for name in self.logs if acts_on(event.fault.kind, name)]
        else:
            names = [event.transport] if event.transport in self.logs else []
        for name in names:
            mark = self.logs[name].on_event(event)
            if mark:
                self._history(name).mark(mark)

    # --- frames ---------------------------------------------------------------------------

    @property
    def transports(self) -> list[str]:
        return list(self.session.config.transports)

    @property
    def rate(self) -> float:
        return self.session.rate

    def dashboard(self, now: float) -> Dashboard:
        """One frame; samples the charts when a sample period has passed."""
        if not self.session.clients:  # not started yet
            panes = tuple(PaneModel(name, i + 1) for i, name in enumerate(self.transports))
            return Dashboard(panes, rate=self.rate)
        if self._last_sample is None or now - self._last_sample >= SAMPLE_S:
            self._sample(now)
        if now >= self._percentiles_due:
            self._refresh_percentiles(now)
            self._percentiles_due = now + PERCENTILES_S / len(self.session.clients)
        return Dashboard(
            panes=tuple(self._pane(i + 1, name, c, now) for i, (name, c) in enumerate(self.session.clients.items())),
            fault_rows=tuple(fault_row(f, now) for f in self.session.faults.active()),
            rate=self.rate,
            published=self.session.published_count,
            elapsed_s=self.session.duration(),
            url=self.session.control_url,
            overloaded=tuple(self.session.overloaded_sides()),
        )

    def _history(self, name: str) -> TransportHistory:
        history = self.histories.get(name)
        if history is None:
            client = self.session.clients.get(name)
            history = TransportHistory(client.channels if client else ("main",))
            self.histories[name] = history
        return history

    def _sample(self, now: float) -> None:
        dt = now - self._last_sample if self._last_sample is not None else SAMPLE_S
        self._last_sample = now
        overloaded = bool(self.session.overloaded_sides())
        for name, client in self.session.clients.items():
            history = self._history(name)
            if overloaded:  # the period shows on every chart: its figures are not the transport's
                history.mark(MARK_OVERLOAD)
            for channel, stats in client.stats.items():
                hist = history.channels.setdefault(channel, ChannelHistory())
                hist.sample(stats.tracker.delivered, stats.take_window_max_ms(), dt)
            history.close_sample()

    def _refresh_percentiles(self, now: float) -> None:
        """The latency percentiles of the next transport in turn. Each is a pass over a
        2100-bucket histogram (and the last-10-s one a merge of ten): all of them at once
        made one frame in five several times longer than the others."""
        names = list(self.session.clients)
        if not names:
            return
        name = names[self._percentiles_turn % len(names)]
        self._percentiles_turn += 1
        for channel, stats in self.session.clients[name].stats.items():
            self._percentiles[name, channel] = (
                *stats.latency.percentiles(50, 99),
                *stats.recent.histogram(now).percentiles(50, 99),
            )

    def _pane(self, index: int, name: str, client: Client, now: float) -> PaneModel:
        history = self._history(name)
        detail = client.state_detail
        if client.state is State.OPEN:
            detail = cursor_detail(client)  # where it resumes from now, not at connect time
        elif client.state is State.RETRYING and self.logs[name].last_reason:
            detail = f"{self.logs[name].last_reason}{DETAIL_SEPARATOR}{detail}"
        status, detail = status_of(client.state, detail, client.retry_at, now, client.attempts)
        detail = with_policy(client, detail)
        view = self.session.view_of(client)
        channels = tuple(
            self._channel(name, channel, client.stats[channel], history.channels.get(channel), view, now)
            for channel in client.channels
        )
        return PaneModel(
            transport=name,
            index=index,
            state=client.state,
            status=status,
            detail=detail,
            channels=channels,
            connects=client.conn.connects,
            reconnects=client.conn.reconnects,
            downtime_s=round(client.conn.downtime(now), 1),
            marks=tuple(history.marks),
            log=self.logs[name].tail(LOG_TAIL),
        )

    def _channel(
        self, name: str, channel: str, stats: ChannelStats, hist: ChannelHistory | None, view: View, now: float
    ) -> ChannelModel:
        figures = stats.figures(view)  # the one definition the report and compare view use
        p50, p99, recent_p50, recent_p99 = self._percentiles.get((name, channel), (None, None, None, None))
        return ChannelModel(
            name=channel,
            delivered=count(figures, "delivered"),
            lost=count(figures, "lost"),
            behind=count(figures, "pending"),
            lost_to_reset=count(figures, "lost_to_reset"),
            duplicates=count(figures, "duplicates"),
            out_of_order=count(figures, "out_of_order"),
            p50_ms=p50,
            p99_ms=p99,
            recent_p50_ms=recent_p50,
            recent_p99_ms=recent_p99,
            rate=stats.arrivals.rate(now),
            latency=tuple(hist.latency) if hist else (),
            arrivals=tuple(hist.arrivals) if hist else (),
        )

    # --- commands -------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        return self.session.report()

    async def toggle_fault(self, kind: Kind, scope: str, value: float | None) -> str:
        # An outage or a crash takes the whole server down, whichever pane is selected.
        return await toggle_fault(self.session.faults, kind, ALL if kind in SERVER_WIDE else scope, value)

    async def clear_faults(self) -> int:
        return len(await self.session.faults.clear())

    async def clear_fault(self, fault_id: int) -> str:
        return ", ".join(f.describe() for f in await self.session.faults.clear(fault_id))

    def restart(self, transports: list[str]) -> list[str]:
        return [name for name in transports if self.session.restart_client(name)]

    def reset_counters(self) -> None:
        self.session.reset_counters()
        self._percentiles.clear()

    async def set_rate(self, rate: float) -> None:
        await self.session.set_rate(rate)

    def cycle_policy(self, transports: list[str]) -> list[str]:
        return cycle_policies(self.session, transports)


def acts_on(kind: Kind, transport: str) -> bool:
    """Whether a fault of ``kind`` on every transport acts on ``transport`` (its pane logs it)."""
    return kind not in UDP_ONLY or transport in UDP_TRANSPORTS


def cursor_detail(client: Client) -> str:
    """Where an open client resumes from right now: ``since=42``, ``Last-Event-ID: 42``."""
    if client.name == "sse":
        return f"Last-Event-ID: {client.cursor or '(none)'}"
    return f"since={client.cursor}"


def fault_row(fault: Fault, now: float) -> FaultRow:
    """A fault as the fault list and the fault bar show it, time left counted from ``now``."""
    amount = "" if fault.value is None else format_amount(fault.kind, fault.value)
    if fault.jitter:
        amount += f"±{fault.jitter:g}"
    left = None if fault.until is None else max(0.0, fault.until - now)
    return FaultRow(fault.id, fault.kind.value, fault.scope, amount, left)


class StaticBackend:
    """A fixed frame and report; commands are recorded, not sent (snapshots, demos)."""

    live = False

    def __init__(self, dashboard: Dashboard, report: dict[str, Any] | None = None) -> None:
        self.frame = dashboard
        self._report = report or {"published": 0, "duration_s": 0.0, "transports": {}, "faults": []}
        self.commands: list[tuple[str, object]] = []
        self._rate = dashboard.rate

    @property
    def transports(self) -> list[str]:
        return [pane.transport for pane in self.frame.panes]

    @property
    def rate(self) -> float:
        return self._rate

    def dashboard(self, now: float) -> Dashboard:
        return self.frame

    def report(self) -> dict[str, Any]:
        return self._report

    async def toggle_fault(self, kind: Kind, scope: str, value: float | None) -> str:
        self.commands.append(("toggle", (kind, scope, value)))
        return f"toggled {kind.value} on {scope}"

    async def clear_faults(self) -> int:
        self.commands.append(("clear", None))
        return 0

    async def clear_fault(self, fault_id: int) -> str:
        self.commands.append(("clear", fault_id))
        return ""

    def restart(self, transports: list[str]) -> list[str]:
        self.commands.append(("restart", transports))
        return []

    def reset_counters(self) -> None:
        self.commands.append(("reset", None))

    async def set_rate(self, rate: float) -> None:
        self.commands.append(("rate", rate))
        self._rate = rate

    def cycle_policy(self, transports: list[str]) -> list[str]:
        self.commands.append(("policy", transports))
        return []

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""
