"""Fault amounts, publish rates and toggling, against the real fault state."""

from __future__ import annotations

import pytest

from rtplay.model.events import State
from rtplay.protocol.faults import ALL, Fault, FaultError, Kind
from rtplay.tui.controls import AMOUNTS, Amounts, format_amount, next_rate, toggle_fault
from rtplay.tui.main import TimerLag
from rtplay.tui.model import status_of
from servers.core.faults import FaultState


class Faults:
    """The fault controller's surface, on a real FaultState (no session)."""

    def __init__(self) -> None:
        self.state = FaultState()

    async def add(self, kind: Kind, scope: str = ALL, value: float | None = None) -> Fault:
        return self.state.add(kind, scope, value, now=0.0)

    async def clear(self, fault_id: int | None = None) -> list[Fault]:
        return self.state.clear(fault_id)

    def active(self) -> list[Fault]:
        return self.state.active()


def test_amounts_cycle_and_wrap() -> None:
    amounts = Amounts()
    assert amounts.value(Kind.DELAY) == 200 and amounts.value(Kind.ERROR) == 503
    assert amounts.value(Kind.DROP) is None and amounts.label(Kind.STALL) == ""
    assert [amounts.cycle(Kind.ERROR) for _ in range(4)] == [500, 204, 429, 503]
    assert amounts.armed is Kind.ERROR
    assert amounts.cycle(Kind.LOSS, -1) == 5 and amounts.cycle(Kind.LOSS, -1) == 50
    with pytest.raises(ValueError):
        amounts.cycle(Kind.DROP)
    assert AMOUNTS[Kind.THROTTLE] == (1, 5, 20)


def test_amount_labels_carry_units() -> None:
    assert [
        format_amount(k, v)
        for k, v in ((Kind.DELAY, 200), (Kind.ERROR, 503), (Kind.LOSS, 10), (Kind.OUTAGE, 5), (Kind.THROTTLE, 5))
    ] == ["200ms", "503", "10%", "5s", "5KB/s"]


def test_rates_step_up_and_down_and_stop_at_the_ends() -> None:
    assert [next_rate(r, 1) for r in (0, 1, 10, 100, 1000, 50, 5000)] == [1, 10, 100, 1000, 1000, 100, 5000]
    assert [next_rate(r, -1) for r in (0, 1, 10, 1000, 50, 0.5)] == [0, 1, 1, 100, 10, 0.5]


async def test_a_fault_key_toggles_the_same_kind_on_the_same_scope() -> None:
    faults = Faults()
    assert await toggle_fault(faults, Kind.DELAY, "sse", 200) == "started delay 200ms on sse"
    assert await toggle_fault(faults, Kind.DELAY, ALL, 500) == "started delay 500ms on all"  # another scope: added
    assert await toggle_fault(faults, Kind.DELAY, "sse", 1000) == "cleared delay 200ms on sse"
    assert [f.describe() for f in faults.active()] == ["delay 500ms on all"]
    assert await toggle_fault(faults, Kind.STALL, ALL, 200) == "started stall on all"  # no value: ignored
    assert await toggle_fault(faults, Kind.DROP, "ws", None) == "started drop on ws"
    assert await toggle_fault(faults, Kind.DROP, "ws", None) == "started drop on ws"  # one-shot: never "on"


async def test_a_fault_that_makes_no_sense_raises_with_the_reason() -> None:
    with pytest.raises(FaultError, match="acts on datagrams"):
        await toggle_fault(Faults(), Kind.LOSS, "sse", 10)


def test_status_counts_down_to_the_retry() -> None:
    assert status_of(State.RETRYING, "retry: field", retry_at=12.4, now=10.0) == ("retrying in 2.4 s", "retry: field")
    assert status_of(State.RETRYING, "dropped", retry_at=9.0, now=10.0) == ("retrying…", "dropped")
    assert status_of(State.FAILED, "HTTP 503", None, 0.0) == ("failed: HTTP 503", "")
    assert status_of(State.OPEN, "since=4", None, 0.0) == ("open", "since=4")
    assert status_of(State.CONNECTING, "", None, 0.0, attempts=3) == ("connecting… (attempt 3)", "")


def test_the_loop_monitor_reports_the_worst_lateness_and_the_frame_rate() -> None:
    monitor = TimerLag(interval=0.1)
    for now in (0.0, 0.1, 0.2, 0.35, 0.45):  # one tick came 50 ms late
        monitor.tick(now)
    assert round(monitor.lag_ms(0.45)) == 50
    assert monitor.hz(0.45) == 5
    assert monitor.lag_ms(10.0) == 0  # forgotten after the window


def test_a_narrow_pane_without_channels_yet_has_its_connection_counters() -> None:
    """While the session still reaches its server (a second process), panes have no channels."""
    from rtplay.tui.panes import CounterData, counter_groups

    groups = counter_groups(CounterData((), 0, 0, 0.0, compact=True), short=True)
    assert [t.plain.split("\u00a0")[0] for t in groups[0]] == ["p50", "reconn", "down"]
    full = counter_groups(CounterData((), 0, 0, 0.0), short=True)
    assert [t.plain.split("\u00a0")[0] for t in full[0]] == ["conn", "reconn", "down"]
