"""The session's side of faults: commands, a timeline, events for panes, recovery figures.

The fault *state* and its effects live with the server; this controller sends commands
through the server's control API (like any script), turns the fault events the server
streams back into session events and recovery records, and plays a scenario's timeline.

A fault the session injects opens its recovery records *before* the command goes out: the
server (its own process) acts on the fault before its "started" event can reach us, and a
client that reconnects within those few milliseconds must still be credited to the fault.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from rtplay.clients.base import Client, Network
from rtplay.engine.control_client import ControlError, ServerMirror
from rtplay.model.accounting import View
from rtplay.model.events import Connected, Event, FaultEnded, FaultStarted, MessageReceived
from rtplay.model.faultspec import FaultSpec
from rtplay.model.recovery import RecoveryTracker
from rtplay.protocol.faults import ALL, ONE_SHOT, Fault, Kind, validate, validate_on_own_server

log = logging.getLogger(__name__)

class FaultCommands(Protocol):
    """The control API's fault commands (what :class:`~rtplay.engine.control_client.ControlClient` offers)."""

    async def add_fault(self, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        """Start a fault: its JSON, and the hub's last seq as it began (None if not said)."""

    async def clear_faults(self, fault_id: int | None = None) -> list[dict[str, Any]]:
        """End one fault (all when None); the JSON of each fault ended."""


class FaultController:
    """Adds and clears faults of one session and keeps their recovery figures.

    Its collaborators come in narrow: the control API's fault commands (``control``, asked
    for at each command since the session connects after building this), the session's mirror
    of the server, ``emit`` for pane events, the clock, the clients by transport, how a
    client's figures are viewed now, and when the session started (None until it has).
    """

    def __init__(
        self,
        control: Callable[[], FaultCommands],
        mirror: ServerMirror,
        emit: Callable[[Event], None],
        clock: Callable[[], float],
        clients: Mapping[str, Client],
        view_of: Callable[[Client], View],
        started_at: Callable[[], float | None],
        network: Network | None = None,
    ) -> None:
        self._control = control
        self._mirror = mirror
        self._emit = emit
        self._clock = clock
        self._clients = clients
        self._view_of = view_of
        self._started_at = started_at
        self._network = network
        """The clients' own network: the ``offline`` fault is decided here, on the client
        side, the moment it is asked for or heard of, never after a round trip."""
        self.recovery = RecoveryTracker()
        self._timeline: asyncio.Task[None] | None = None
        self._opened: set[int] = set()
        #: Faults whose start seq is known: the first word that says it (the answer's exact seq,
        #: or the event's) is kept; the later one would only move it on.
        self._confirmed: set[int] = set()
        """Ids whose records are open already (opened by our own command)."""
        self._pending: dict[int, tuple[Kind, str]] = {}
        """Our commands in flight: provisional record id → (kind, scope)."""
        self._opened_at: dict[int, float] = {}
        """When the records of our own faults opened (the command left): their start."""
        self._next_provisional = -1
        self._added: set[int] = set()
        """Ids of the faults this session added (an attached server is left without them)."""

    def _origin(self) -> float:
        started = self._started_at()
        return started if started is not None else self._clock()

    def start(self) -> None:
        self.recovery.origin = self._origin()

    async def stop(self) -> None:
        if self._timeline is not None:
            self._timeline.cancel()
            await asyncio.wait([self._timeline])  # a cancellation of this call still propagates
            self._timeline = None

    # --- commands --------------------------------------------------------------------------

    async def add(
        self,
        kind: Kind,
        scope: str = ALL,
        value: float | None = None,
        *,
        jitter: float = 0.0,
        duration: float | None = None,
    ) -> Fault:
        """Start a fault now; raises :class:`~rtplay.protocol.faults.FaultError` (a ValueError)
        with the reason when it makes no sense."""
        validate(kind, scope, value, jitter)  # say what is wrong without a round trip
        validate_on_own_server(kind, scope)
        body = {"kind": kind.value, "scope": scope, "value": value, "jitter": jitter, "duration": duration}
        provisional = self._open_provisional(kind, scope, value, jitter)
        if kind is Kind.OFFLINE:
            self._switch_network(extra=scope)
        try:
            answer, published = await self._control().add_fault(body)
        except BaseException:
            self._pending.pop(provisional, None)
            self._opened_at.pop(provisional, None)
            self.recovery.withdraw(provisional)
            self._switch_network()
            raise
        fault = Fault.from_json(answer, self._clock())
        self._adopt(provisional, fault)
        self._added.add(fault.id)
        if published is not None:  # the server says where it began: no need to wait for its event
            self._confirm(fault, published)
        self._mirror.started(fault)  # active now, unless its event came first and said so already
        self._switch_network()
        return fault

    def added_and_active(self) -> list[int]:
        """Ids of the faults this session added that are still on, as the server last said."""
        return sorted(self._added & {f.id for f in self.active()})

    def _switch_network(self, extra: str | None = None) -> None:
        """Set the clients' network from the active ``offline`` faults (and ``extra``, one
        being asked for)."""
        if self._network is not None:
            scopes = {f.scope for f in self._mirror.active() if f.kind is Kind.OFFLINE}
            self._network.set_down(scopes | ({extra} if extra else set()))

    def _open_provisional(self, kind: Kind, scope: str, value: float | None, jitter: float) -> int:
        """Open the records of a fault we are about to ask for, under a provisional id."""
        provisional = self._next_provisional
        self._next_provisional -= 1
        probe = Fault(provisional, kind, scope, value, jitter, started=self._clock(), until=None)
        self._opened_at[provisional] = probe.started
        self._pending[provisional] = (kind, scope)
        # A one-shot fault's records end where it acted, which only its event can say: until
        # then they stay open, so an arrival before the server acted is not a recovery.
        self._open_records(provisional, probe, one_shot=False)
        return provisional

    def _adopt(self, provisional: int, fault: Fault) -> None:
        """Our command's answer (or its event, whichever came first) names the fault's id."""
        if self._pending.pop(provisional, None) is None:
            return  # its event came first and adopted the records already
        opened_at = self._opened_at.pop(provisional)
        if fault.id in self._opened:
            self.recovery.withdraw(provisional)  # cannot happen: the server's ids are new
        else:
            self.recovery.rename(provisional, fault.id, fault.describe())
            self._opened.add(fault.id)
            self._opened_at[fault.id] = opened_at

    async def clear(self, fault_id: int | None = None) -> list[Fault]:
        """End one fault (all when None) now; return what was cleared."""
        now = self._clock()
        cleared = [Fault.from_json(f, now) for f in await self._control().clear_faults(fault_id)]
        for fault in cleared:  # ended now, whether or not its event has arrived yet
            self._mirror.ended(fault.id)
        self._switch_network()
        return cleared

    def active(self) -> list[Fault]:
        """The active faults, as the server's events last said."""
        return self._mirror.active()

    async def add_spec(self, spec: FaultSpec) -> Fault:
        return await self.add(spec.kind, spec.scope, spec.value, jitter=spec.jitter, duration=spec.duration)

    def run_timeline(self, specs: Iterable[FaultSpec]) -> None:
        """Apply each spec at its start time (seconds after the session started)."""
        ordered = sorted(specs, key=lambda s: s.start)
        self._timeline = asyncio.create_task(self._run_timeline(ordered), name="rtplay-timeline")

    async def _run_timeline(self, specs: list[FaultSpec]) -> None:
        origin = self._origin()
        for spec in specs:
            delay = origin + spec.start - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self.add_spec(spec)
            except (ValueError, ControlError) as exc:  # specs are validated up front; this is a last resort
                log.error("fault %s not applied: %s", spec, exc)

    # --- events and recovery figures -------------------------------------------------------

    def on_server_fault(self, what: str, fault: Fault) -> None:
        """A fault started or ended on the server (from its event stream)."""
        now = self._clock()
        if what == "started":
            mine = next((p for p, ks in self._pending.items() if ks == (fault.kind, fault.scope)), None)
            if mine is not None:  # our own command's fault, its event ahead of the answer
                self._adopt(mine, fault)
            elif fault.id not in self._opened:
                self._open_records(fault.id, fault)
                self._opened.add(fault.id)
            self._confirm(fault, self._mirror.published)
            # The pane's marker and the message log start the fault where its records do.
            at = self._opened_at.pop(fault.id, now)
            self._emit(FaultStarted(fault.scope, at, fault, self.recovery.published_at_start(fault.id)))
            self._switch_network()
        else:
            self.recovery.fault_ended(fault.id, now, self._mirror.published)
            self._emit(FaultEnded(fault.scope, now, fault))
            self._switch_network()

    def _confirm(self, fault: Fault, published: int) -> None:
        if fault.id not in self._confirmed:
            self._confirmed.add(fault.id)
            self.recovery.confirmed(fault.id, published, fault.kind in ONE_SHOT)

    def _open_records(self, record_id: int, fault: Fault, one_shot: bool | None = None) -> None:
        targets = [n for n in self._clients if fault.applies_to(n)]
        if one_shot is None:
            one_shot = fault.kind in ONE_SHOT
        self.recovery.fault_started(record_id, fault.describe(), targets, self._clock(), one_shot, self._mirror.published)

    def on_event(self, event: Event) -> None:
        client = self._clients.get(event.transport)
        if client is None or isinstance(event, MessageReceived):
            return
        cursor = client.cursor
        if isinstance(event, Connected) and client.resume_cursor is not None:
            cursor = client.resume_cursor  # replay counts from what the attempt asked for
        self.recovery.on_event(event, cursor, self._mirror.published)

    def on_arrival(self, transport: str, now: float, channel: str, seq: int, new: bool, latency_ms: float) -> None:
        """Every envelope of ``transport`` (the session calls it from the client's hook)."""
        if self.recovery.wants_arrivals(transport):
            primary = channel == self._clients[transport].channels[0]
            self.recovery.on_arrival(transport, channel, seq, new, now, self._mirror.published, primary, latency_ms)

    def report(self) -> list[dict[str, object]]:
        views = {n: (c.stats, self._view_of(c)) for n, c in self._clients.items()}
        return self.recovery.to_json(views)
