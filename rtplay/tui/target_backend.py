"""The playground on a target session: a pane per target, the same charts, keys and log.

:class:`TargetBackend` is a :class:`~rtplay.tui.backend.Backend` over a
:class:`~rtplay.engine.target_session.TargetSession`. A figure the stated identity cannot
measure is None in the pane's model, which the pane shows as ``unknown``, never 0. The
publish rate is the target's own: the header shows the arrival rate, and the rate keys say
they cannot change it.
"""

from __future__ import annotations

import logging
from typing import Any

from rtplay.engine.target_faults import TargetFaults
from rtplay.engine.target_session import TargetSession
from rtplay.model.events import Event, FaultEnded, FaultStarted, State
from rtplay.model.target_stats import TargetStats
from rtplay.protocol.faults import ALL, Kind
from rtplay.tui.backend import LOG_TAIL, fault_row
from rtplay.tui.controls import toggle_fault
from rtplay.tui.history import SAMPLE_S, ChannelHistory, EventLog, TransportHistory
from rtplay.tui.model import ChannelModel, Dashboard, PaneModel, status_of
from rtplay.tui.policy import with_policy

log = logging.getLogger(__name__)


class TargetRateError(ValueError):
    """The rate keys in target mode: the target publishes at its own rate."""


class TargetBackend:
    """Frames and commands for a target session."""

    live = True

    def __init__(self, session: TargetSession) -> None:
        self.session = session
        self.faults = TargetFaults(session)
        self.histories = {name: TransportHistory(("main",)) for name in session.config.targets}
        self.logs = {name: EventLog(session.clock()) for name in session.config.targets}
        self._last_sample: float | None = None
        self._last_latency: dict[str, float | None] = {}
        self._stopped = False
        session.subscribe(self.on_event)

    async def start(self) -> None:
        await self.session.start()

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.session.unsubscribe(self.on_event)
        await self.session.stop()

    def on_event(self, event: Event) -> None:
        """Log ``event`` in its pane(s) and mark the chart: appends only, no repaint."""
        names = list(self.logs) if isinstance(event, FaultStarted | FaultEnded) and event.transport == ALL else [
            event.transport] if event.transport in self.logs else []
        for name in names:
            mark = self.logs[name].on_event(event)
            if mark:
                self.histories[name].mark(mark)

    @property
    def transports(self) -> list[str]:
        return list(self.session.config.targets)

    @property
    def rate(self) -> float:
        """Messages arriving per second, all targets together (the target sets its own rate)."""
        now = self.session.clock()
        return round(sum(tap.stats.arrivals.rate(now) for tap in self.session.taps.values()), 1)

    def dashboard(self, now: float) -> Dashboard:
        if self._last_sample is None or now - self._last_sample >= SAMPLE_S:
            self._sample(now)
        panes = tuple(self._pane(i + 1, name, now) for i, name in enumerate(self.transports))
        mode = "direct: client-side faults only" if self.session.config.direct else "via rtplay's proxy"
        return Dashboard(
            panes=panes,
            fault_rows=tuple(fault_row(f, now) for f in self.faults.active()),
            rate=self.rate,
            published=sum(tap.stats.messages for tap in self.session.taps.values()),
            elapsed_s=self.session.duration(),
            url=f"target mode, {mode}",
            unavailable=frozenset(k.value for k in Kind if self.faults.refusal(k) is not None),
        )

    def _sample(self, now: float) -> None:
        dt = now - self._last_sample if self._last_sample is not None else SAMPLE_S
        self._last_sample = now
        for name, tap in self.session.taps.items():
            history = self.histories[name]
            latency = tap.stats.last_latency_ms if tap.stats.has_time else None
            hist = history.channels.setdefault("main", ChannelHistory())
            hist.sample(tap.stats.messages, latency, dt)
            history.close_sample()

    def _pane(self, index: int, name: str, now: float) -> PaneModel:
        client = self.session.clients.get(name)
        tap = self.session.taps.get(name)
        if client is None or tap is None:
            return PaneModel(name, index)
        detail = client.state_detail
        if client.state is State.RETRYING and self.logs[name].last_reason:
            detail = f"{self.logs[name].last_reason} · {detail}"
        status, detail = status_of(client.state, detail, client.retry_at, now, client.attempts)
        history = self.histories[name]
        return PaneModel(
            transport=name,
            index=index,
            state=client.state,
            status=status,
            detail=with_policy(client, detail),
            channels=(channel_model(tap.stats, history.channels.get("main"), now),),
            connects=client.conn.connects,
            reconnects=client.conn.reconnects,
            downtime_s=round(client.conn.downtime(now), 1),
            marks=tuple(history.marks),
            log=self.logs[name].tail(LOG_TAIL),
        )

    def report(self) -> dict[str, Any]:
        return self.session.report()

    async def toggle_fault(self, kind: Kind, scope: str, value: float | None) -> str:
        return await toggle_fault(self.faults, kind, scope, value)

    async def clear_faults(self) -> int:
        return len(await self.faults.clear())

    async def clear_fault(self, fault_id: int) -> str:
        return ", ".join(f.describe() for f in await self.faults.clear(fault_id))

    def restart(self, transports: list[str]) -> list[str]:
        return [name for name in transports if self.session.restart_client(name)]

    def cycle_policy(self, transports: list[str]) -> list[str]:
        return self.session.cycle_policies(transports)

    def reset_counters(self) -> None:
        self.session.reset_counters()

    async def set_rate(self, rate: float) -> None:
        raise TargetRateError("the target publishes at its own rate")


def channel_model(stats: TargetStats, hist: ChannelHistory | None, now: float) -> ChannelModel:
    """A target's counters: None (shown as unknown) for what its identity cannot measure."""
    tracker = stats.tracker
    seq = stats.has_seq
    p50, p99 = stats.latency.percentiles(50, 99) if stats.has_time else (None, None)
    r50, r99 = stats.recent.histogram(now).percentiles(50, 99) if stats.has_time else (None, None)
    return ChannelModel(
        name="main",
        delivered=(tracker.delivered if tracker else 0) if seq else None,
        lost=(tracker.missing if tracker else 0) if seq else None,
        behind=None,
        lost_to_reset=None,
        duplicates=(tracker.duplicates if tracker else 0) if seq else None,
        out_of_order=(tracker.out_of_order if tracker else 0) if seq else None,
        p50_ms=p50,
        p99_ms=p99,
        recent_p50_ms=r50,
        recent_p99_ms=r99,
        rate=stats.arrivals.rate(now),
        latency=tuple(hist.latency) if hist else (),
        arrivals=tuple(hist.arrivals) if hist else (),
        latency_known=stats.has_time,
    )
