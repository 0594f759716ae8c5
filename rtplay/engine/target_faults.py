"""The playground's fault keys in target mode: start and clear faults on a target session.

The same contract as rtplay's own fault controller (``add`` / ``clear`` / ``active``), so
the fault keys toggle faults here too; which faults apply depends on the mode (through the
proxy: every fault it can do; ``--direct``: the client's own only) and a fault that cannot
apply is refused with the reason, which the playground shows.
"""

from __future__ import annotations

import itertools

from rtplay.engine.target_session import CLIENT_SIDE_NAMES, NOT_AT_PROXY, TargetSession, client_side
from rtplay.model.events import FaultEnded, FaultStarted
from rtplay.model.faultspec import FaultSpec
from rtplay.protocol.faults import ALL, ONE_SHOT, Fault, FaultError, Kind, validate

#: Faults one target session holds at once: every key on every pane is far fewer.
MAX_ACTIVE_FAULTS = 64


class TargetFaults:
    """Active faults of a target session, started and cleared from the keyboard."""

    def __init__(self, session: TargetSession) -> None:
        self.session = session
        self._ids = itertools.count(1)
        self._active: dict[int, tuple[Fault, FaultSpec]] = {}

    def refusal(self, kind: Kind) -> str | None:
        """Why ``kind`` cannot apply in this session's mode, or None."""
        if self.session.config.direct and kind not in client_side():
            return f"--direct applies only client-side faults ({CLIENT_SIDE_NAMES}); {kind.value} needs the proxy"
        if kind in NOT_AT_PROXY:
            return "a proxy cannot make the target lose its state: use outage"
        return None

    async def add(self, kind: Kind, scope: str = ALL, value: float | None = None) -> Fault:
        """Start a fault now (FaultError with the reason when it cannot apply)."""
        # The scope is checked against the targets below: loss, reorder and duplicate act on
        # SSE events and WebSocket messages at the proxy, not only on datagrams.
        validate(kind, ALL, value)
        if (why := self.refusal(kind)) is not None:
            raise FaultError(why)
        if scope != ALL and scope not in self.session.taps:
            raise FaultError(f"no target for {scope}")
        if len(self._active) >= MAX_ACTIVE_FAULTS:
            raise FaultError(f"at most {MAX_ACTIVE_FAULTS} faults at once: clear some")
        now = self.session.clock()
        spec = FaultSpec(kind, value, 0.0, round(now - self.session.origin, 3), None, scope)
        until = now + value if kind is Kind.OUTAGE and value is not None else None
        fault = Fault(next(self._ids), kind, scope, value, 0.0, now, until)
        self.session.apply(spec)
        self.session.emit(FaultStarted(scope, now, fault))
        if kind in ONE_SHOT:
            self.session.emit(FaultEnded(scope, now, fault))
        else:
            self._active[fault.id] = (fault, spec)
        return fault

    async def clear(self, fault_id: int | None = None) -> list[Fault]:
        """Clear one fault, or every one; return those cleared."""
        ids = [fault_id] if fault_id is not None else list(self._active)
        cleared = []
        for i in ids:
            if (entry := self._active.pop(i, None)) is None:
                continue
            fault, spec = entry
            self.session.end(spec)
            if fault.kind is Kind.OFFLINE or self.session.config.direct:
                for transport in self.session.taps:
                    if fault.applies_to(transport):
                        self.session.back_online(transport)
            self.session.emit(FaultEnded(fault.scope, self.session.clock(), fault))
            cleared.append(fault)
        return cleared

    def active(self) -> list[Fault]:
        """Faults on now (an outage ends by itself)."""
        now = self.session.clock()
        for i, (fault, _) in list(self._active.items()):
            if fault.until is not None and fault.until <= now:
                del self._active[i]
                self.session.emit(FaultEnded(fault.scope, now, fault))
        return [fault for fault, _ in self._active.values()]
