"""The session's side of faults: commands, a timeline, events for panes, recovery figures.

The fault *state* and its effects live with the server; this controller sends commands
through the server's control API (like any script), turns the fault events the server
streams back into session events and recovery records, and plays a scenario's timeline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rtplay.engine.control_client import ControlError
from rtplay.model.events import Connected, Event, FaultEnded, FaultStarted, MessageReceived
from rtplay.model.faultspec import FaultSpec
from rtplay.protocol.faults import ALL, ONE_SHOT, Fault, Kind, validate
from rtplay.model.recovery import RecoveryTracker

if TYPE_CHECKING:
    from rtplay.engine.session import Session

log = logging.getLogger(__name__)

#: Client events and arrivals held while a fault command is in flight (its record starts when
#: the command was sent, but only its answer or its event names it and says which seq was the
#: last before it). A command takes a round trip of milliseconds: at 1000 msg/s on six
#: transports that is tens of arrivals; past this bound the oldest is fed on at once
#: (attributed as if no command were in flight).
MAX_HELD = 4096

#: Fault ids whose recovery record exists, remembered so the answer and the event stream
#: (which may come in either order) start one record. A session has a few faults in flight.
MAX_REMEMBERED_IDS = 256


class FaultController:
    """Adds and clears faults of one session and keeps their recovery figures."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.recovery = RecoveryTracker()
        self._timeline: asyncio.Task[None] | None = None
        self._in_flight: list[float] = []
        """When each fault command now awaiting its answer was sent."""
        self._held: deque[Callable[[], None]] = deque()
        """What the clients did while a command was in flight, fed to the records after it."""
        self._starts: dict[int, tuple[float, int]] = {}
        """Per fault with a record: when it started and the hub's last seq then (oldest first)."""
        self._added: set[int] = set()
        """Ids of the faults this session added (an attached server is left without them)."""

    def start(self) -> None:
        self.recovery.origin = self.session.started_at or self.session.clock()

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
        body = {"kind": kind.value, "scope": scope, "value": value, "jitter": jitter, "duration": duration}
        # The fault acts before its answer (or its event) arrives: a drop's disconnects can
        # come first. Its record starts when the command was sent, and what the clients do
        # meanwhile is held until the record exists, so the fault owns it.
        sent = self.session.clock()
        self._in_flight.append(sent)
        try:
            answer, published = await self.session._api().add_fault(body)
            fault = Fault.from_json(answer, self.session.clock())
            self.session.server.started(fault)  # active now, whether or not its event has arrived yet
            self._added.add(fault.id)
            self._record_start(fault, sent, published)
        finally:
            self._in_flight.remove(sent)
            if not self._in_flight:
                self._release_held()
        return fault

    def added_and_active(self) -> list[int]:
        """Ids of the faults this session added that are still on, as the server last said."""
        return sorted(self._added & {f.id for f in self.active()})

    async def clear(self, fault_id: int | None = None) -> list[Fault]:
        """End one fault (all when None) now; return what was cleared."""
        now = self.session.clock()
        cleared = [Fault.from_json(f, now) for f in await self.session._api().clear_faults(fault_id)]
        for fault in cleared:  # ended now, whether or not its event has arrived yet
            self.session.server.ended(fault.id)
        return cleared

    def active(self) -> list[Fault]:
        """The active faults, as the server's events last said."""
        return self.session.server.active()

    async def add_spec(self, spec: FaultSpec) -> Fault:
        return await self.add(spec.kind, spec.scope, spec.value, jitter=spec.jitter, duration=spec.duration)

    def run_timeline(self, specs: Iterable[FaultSpec]) -> None:
        """Apply each spec at its start time (seconds after the session started)."""
        ordered = sorted(specs, key=lambda s: s.start)
        self._timeline = asyncio.create_task(self._run_timeline(ordered), name="rtplay-timeline")

    async def _run_timeline(self, specs: list[FaultSpec]) -> None:
        origin = self.session.started_at or self.session.clock()
        for spec in specs:
            delay = origin + spec.start - self.session.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self.add_spec(spec)
            except (ValueError, ControlError) as exc:  # specs are validated up front; this is a last resort
                log.error("fault %s not applied: %s", spec, exc)

    # --- events and recovery figures -------------------------------------------------------

    def on_server_fault(self, what: str, fault: Fault) -> None:
        """A fault started or ended on the server (from its event stream)."""
        now = self.session.clock()
        if what == "started":
            self._record_start(fault, min(self._in_flight, default=now))
            started = self.start_of(fault.id)
            self.session.emit(FaultStarted(fault.scope, now if started is None else started[0], fault))
        else:
            self.recovery.fault_ended(fault.id, now, self.session.published)
            self.session.emit(FaultEnded(fault.scope, now, fault))

    def _record_start(self, fault: Fault, at: float, published: int | None = None) -> None:
        """Start ``fault``'s recovery records (once, whichever of its answer and event is first).

        ``published`` is the hub's last seq as the fault began, as the server said; the
        session's own figure can be a publisher event (0.1 s) behind, and a message published
        before a drop would then read as the first one after it."""
        if fault.id in self._starts:
            return
        seq = max(self.session.published, published or 0)
        self._starts[fault.id] = (at, seq)
        if len(self._starts) > MAX_REMEMBERED_IDS:
            del self._starts[next(iter(self._starts))]
        targets = [n for n in self.session.clients if fault.applies_to(n)]
        self.recovery.fault_started(fault.id, fault.describe(), targets, at, fault.kind in ONE_SHOT, seq)

    def start_of(self, fault_id: int) -> tuple[float, int] | None:
        """When ``fault_id``'s record started and the hub's last seq then (None: unknown)."""
        return self._starts.get(fault_id)

    def _hold(self, feed: Callable[[], None]) -> None:
        if len(self._held) >= MAX_HELD:
            self._held.popleft()()
        self._held.append(feed)

    def _release_held(self) -> None:
        while self._held:
            self._held.popleft()()

    def on_event(self, event: Event) -> None:
        client = self.session.clients.get(event.transport)
        if client is None or isinstance(event, MessageReceived):
            return
        cursor = client.cursor
        if isinstance(event, Connected) and client.resume_cursor is not None:
            cursor = client.resume_cursor  # replay counts from what the attempt asked for
        published = self.session.published
        if self._in_flight:
            self._hold(lambda: self.recovery.on_event(event, cursor, published))
            return
        self.recovery.on_event(event, cursor, published)

    def on_arrival(
        self, transport: str, now: float, channel: str, seq: int, new: bool, latency_ms: float,
        published: int | None = None,
    ) -> None:
        """Every envelope of ``transport`` (the session calls it from the client's hook)."""
        if self._in_flight:  # a record may be about to start: wait for it
            published = self.session.published
            self._hold(lambda: self.on_arrival(transport, now, channel, seq, new, latency_ms, published))
            return
        if self.recovery.wants_arrivals(transport):
            primary = channel == self.session.clients[transport].channels[0]
            self.recovery.on_arrival(
                transport, channel, seq, new, now, published or self.session.published, primary, latency_ms
            )

    def report(self) -> list[dict[str, object]]:
        views = {n: (c.stats, self.session.view_of(c)) for n, c in self.session.clients.items()}
        return self.recovery.to_json(views)
