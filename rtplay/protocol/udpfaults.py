"""Datagram-level faults (loss, reorder, duplicate) for one direction of a UDP path. Pure.

Both UDP transports go through this: the QUIC listener's socket (wt) and each WebRTC
peer's ICE transport (rtc), so QUIC's and SCTP's own recovery react to the same faults
in the same way — the three things netem does, per datagram, with no root.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

#: A datagram held back by a reorder fault leaves after the next one, or after this long
#: when no next one comes, so a reorder fault never turns into a loss by itself.
REORDER_HOLD_S = 0.05

Fate = tuple[bool, bool, bool]
"""(drop, reorder, duplicate) of one datagram, as ``FaultState.datagram_fate`` draws it."""


class DatagramShaper(Generic[T]):
    """What leaves one direction of a UDP path, datagram by datagram. Time is passed in.

    A dropped datagram vanishes; a duplicated one leaves twice; a reordered one is held
    until the next datagram has left (or :data:`REORDER_HOLD_S` has passed), so it arrives
    after one sent later. At most one datagram is held, so memory is bounded.
    """

    def __init__(self, hold_s: float = REORDER_HOLD_S) -> None:
        self.hold_s = hold_s
        self._held: T | None = None
        self._held_until = 0.0
        self.dropped = 0
        self.duplicated = 0
        self.reordered = 0

    @property
    def deadline(self) -> float | None:
        """When the held datagram must leave, if one is held."""
        return self._held_until if self._held is not None else None

    def push(self, datagram: T, fate: Fate, now: float) -> list[T]:
        """What leaves now, in order, when ``datagram`` arrives with ``fate``."""
        drop, reorder, duplicate = fate
        if drop:
            self.dropped += 1
            return []
        out = [datagram, datagram] if duplicate else [datagram]
        self.duplicated += duplicate
        if reorder and self._held is None:
            self.reordered += 1
            self._held, self._held_until = out.pop(), now + self.hold_s
            return out
        if self._held is not None:  # the held one now leaves after this one: reordered
            out.append(self._held)
            self._held = None
        return out

    def due(self, now: float) -> list[T]:
        """The held datagram, once its time is up."""
        if self._held is not None and now >= self._held_until:
            held, self._held = self._held, None
            return [held]
        return []
