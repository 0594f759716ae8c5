"""The fault controller credits every reaction to the fault that caused it, however the
server's answer, its event and the clients' reactions interleave (the server is another
process: it acts before its "started" event can reach the session)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from rtplay.clients.base import Network
from rtplay.engine.control_client import ServerMirror
from rtplay.engine.faults import FaultController
from rtplay.model.accounting import View
from rtplay.model.events import Connected, Disconnected, Event, FaultStarted, RetryScheduled
from rtplay.protocol.control_events import FaultChanged
from rtplay.protocol.faults import Kind


@dataclass
class FakeClient:
    """What the controller reads of a client: its cursors, channels and figures."""

    cursor: int = 90
    resume_cursor: int | None = None
    channels: tuple[str, ...] = ("main",)
    stats: dict[str, Any] = field(default_factory=dict)


class GatedControl:
    """The control API, whose answer to ``add_fault`` waits until the test releases it."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.sent = asyncio.Event()

    async def add_fault(self, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        self.sent.set()
        await self.release.wait()
        return fault_json(7, body["kind"], body["scope"]), 92

    async def clear_faults(self, fault_id: int | None = None) -> list[dict[str, Any]]:
        return []


def fault_json(fault_id: int, kind: str, scope: str = "all") -> dict[str, Any]:
    return {"id": fault_id, "kind": kind, "scope": scope, "value": None, "jitter": 0, "age_s": 0.0,
            "remaining_s": None, "text": f"{kind} on {scope}"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def controller(control: GatedControl, clock: Clock, mirror: ServerMirror, events: list[Event]) -> FaultController:
    client = FakeClient()
    ctl = FaultController(
        lambda: control, mirror, events.append, clock, {"ws": client},  # type: ignore[dict-item]
        lambda c: View(published=mirror.published, replay_from=1, final=False), lambda: 100.0,
    )
    ctl.start()
    return ctl


async def race(event_first: bool) -> tuple[dict[str, object], list[Event]]:
    """A drop whose effects (disconnect, reconnect, replay) all reach the session before the
    server's event and before the command's answer."""
    control, clock, mirror, events = GatedControl(), Clock(), ServerMirror(published=90), []
    ctl = controller(control, clock, mirror, events)
    clock.now = 102.0
    adding = asyncio.create_task(ctl.add(Kind.DROP))
    await control.sent.wait()
    clock.now = 102.003
    ctl.on_event(Disconnected("ws", 102.003, "connection reset"))
    ctl.on_event(RetryScheduled("ws", 102.003, 0.0, "reconnect at once"))
    clock.now = 102.010
    ctl.on_event(Connected("ws", 102.010))
    for seq in range(91, 96):  # the replay of what was published while it was away
        ctl.on_arrival("ws", 102.012, "main", seq, True, 5.0)
    server_event = FaultChanged("started", fault_json(7, "drop"), published=92)
    if event_first:
        ctl.on_server_fault(*mirror.apply(server_event, 102.015) or ("", None))  # type: ignore[arg-type]
        control.release.set()
        await adding
    else:
        control.release.set()
        await adding
        ctl.on_server_fault(*mirror.apply(server_event, 102.015) or ("", None))  # type: ignore[arg-type]
    [record] = ctl.recovery.to_json()
    return record, events


async def test_a_reconnect_before_the_fault_event_is_credited_to_the_fault() -> None:
    for event_first in (False, True):
        record, events = await race(event_first)
        assert record["id"] == 7 and record["fault"] == "drop on all"
        assert record["time_to_detect_s"] == 0.003  # measured from before the command left
        assert record["replayed"] == 5
        assert [type(e) for e in events] == [FaultStarted]  # one pane event, not two


def hear(ctl: FaultController, mirror: ServerMirror, event: FaultChanged, now: float) -> None:
    """The session's follower: the mirror takes the event, the controller its fault change."""
    change = mirror.apply(event, now)
    assert change is not None
    ctl.on_server_fault(*change)


class CountingFaults(dict[int, Any]):
    """The mirror's active faults, counting the writes of each fault id."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: dict[int, int] = {}

    def __setitem__(self, key: int, value: Any) -> None:
        self.writes[key] = self.writes.get(key, 0) + 1
        super().__setitem__(key, value)


async def test_a_fault_is_written_to_the_mirror_once_whichever_word_comes_first() -> None:
    """The command's answer and the server's event both say a fault started: the first one
    writes it into the mirror, the second changes nothing (its start stays where it was)."""
    for event_first in (False, True):
        control, clock, events = GatedControl(), Clock(), []
        faults = CountingFaults()
        mirror = ServerMirror(published=90, faults=faults)
        ctl = controller(control, clock, mirror, events)
        adding = asyncio.create_task(ctl.add(Kind.STALL, "ws"))
        await control.sent.wait()
        server_event = FaultChanged("started", fault_json(7, "stall", "ws"), published=92)
        if event_first:
            clock.now = 101.0
            hear(ctl, mirror, server_event, clock.now)
            clock.now = 102.0
            control.release.set()
            await adding
        else:
            clock.now = 101.0
            control.release.set()
            await adding
            clock.now = 102.0
            hear(ctl, mirror, server_event, clock.now)
        assert faults.writes == {7: 1}
        [active] = ctl.active()
        assert active.started == 101.0  # the first word's start, not moved by the second
        assert [type(e) for e in events] == [FaultStarted]


async def test_a_faults_start_is_confirmed_once_from_the_first_word_that_says_where() -> None:
    """The answer says which seq the server had published when the fault began (92); the event,
    read later, comes with the mirror already further on (95): the records count from 92."""
    control, clock, mirror, events = GatedControl(), Clock(), ServerMirror(published=90), []
    ctl = controller(control, clock, mirror, events)
    adding = asyncio.create_task(ctl.add(Kind.STALL, "ws"))
    await control.sent.wait()
    control.release.set()
    await adding
    hear(ctl, mirror, FaultChanged("started", fault_json(7, "stall", "ws"), published=95), 101.0)
    assert ctl.recovery.published_at_start(7) == 92


async def test_a_command_that_fails_leaves_no_record_behind() -> None:
    class Refusing(GatedControl):
        async def add_fault(self, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
            raise ConnectionRefusedError("control API down")

    control, clock, mirror, events = Refusing(), Clock(), ServerMirror(), []
    ctl = controller(control, clock, mirror, events)
    try:
        await ctl.add(Kind.STALL)
    except ConnectionRefusedError:
        pass
    assert ctl.recovery.to_json() == [] and ctl.active() == []


async def test_offline_is_decided_on_the_client_side_before_the_server_answers() -> None:
    """The client-side fault needs no round trip: the network goes down as the command leaves,
    and a client held offline wakes the moment it is cleared (no polling)."""
    control, clock, mirror, events = GatedControl(), Clock(), ServerMirror(), []
    network = Network()
    ctl = FaultController(
        lambda: control, mirror, events.append, clock, {}, lambda c: View(0, 1, False), lambda: 100.0, network,
    )
    adding = asyncio.create_task(ctl.add(Kind.OFFLINE, "ws"))
    await control.sent.wait()
    assert network.is_down("ws") and not network.is_down("sse")  # before any answer
    waiter = asyncio.create_task(network.wait_up("ws"))
    control.release.set()
    fault = await adding
    assert network.is_down("ws") and not network.is_down("sse") and not waiter.done()
    mirror.ended(fault.id)
    ctl.on_server_fault("ended", fault)  # cleared from anywhere: the server's event says so
    await asyncio.wait_for(waiter, 1)
    assert not network.is_down("ws")
