"""When held long-polls time out: every hold's deadline on one wheel, pure (no clock, no I/O).

A timer per held request (``asyncio.timeout``) was one timer armed and one cancelled per
request, 10,000 a second at 10,000 long-pollers and 1 msg/s, for deadlines that almost never
come (an answer comes first). The wheel files each hold under its deadline rounded up to a
:data:`HOLD_TICK_S` slot; the endpoint keeps one timer, for the earliest slot
(:meth:`HoldWheel.next_due`), and at it ends every hold filed there (:meth:`HoldWheel.due`).
An answered hold leaves its slot at once (:meth:`HoldWheel.discard`), so the wheel holds only
what still waits.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Hashable
from typing import Generic, TypeVar

#: Width of a slot: a hold ends at most this long after its deadline (never before it). A
#: long-poll's hold is seconds (25 s by default); 50 ms late on a 204 is nothing a client
#: notices, and makes every hold that ends within the same 50 ms share one timer.
HOLD_TICK_S = 0.05

H = TypeVar("H", bound=Hashable)


class HoldWheel(Generic[H]):
    """Holds filed by deadline in :data:`HOLD_TICK_S` slots (times are the caller's clock)."""

    __slots__ = ("_tick", "_slots", "_slot_of", "_order")

    def __init__(self, tick: float = HOLD_TICK_S) -> None:
        if tick <= 0:
            raise ValueError("tick must be > 0")
        self._tick = tick
        self._slots: dict[int, set[H]] = {}
        self._slot_of: dict[H, int] = {}
        self._order: list[int] = []
        """A heap of the slots filed (an emptied slot stays until it reaches the top)."""

    def __len__(self) -> int:
        return len(self._slot_of)

    def add(self, hold: H, deadline: float) -> bool:
        """File ``hold`` to end at ``deadline``; True when it is now the earliest slot (the
        caller's timer must move up to :meth:`next_due`)."""
        slot = math.ceil(deadline / self._tick)
        earliest = self._earliest()
        holds = self._slots.get(slot)
        if holds is None:
            holds = self._slots[slot] = set()
            heapq.heappush(self._order, slot)
        holds.add(hold)
        self._slot_of[hold] = slot
        return earliest is None or slot < earliest

    def discard(self, hold: H) -> None:
        """Forget ``hold`` (answered, or its request ended); nothing if it is not filed."""
        slot = self._slot_of.pop(hold, None)
        if slot is None:
            return
        holds = self._slots[slot]
        holds.discard(hold)
        if not holds:
            del self._slots[slot]

    def _earliest(self) -> int | None:
        order = self._order
        while order and order[0] not in self._slots:
            heapq.heappop(order)
        return order[0] if order else None

    def next_due(self) -> float | None:
        """When the earliest slot ends (None: nothing is held)."""
        slot = self._earliest()
        return None if slot is None else slot * self._tick

    def due(self, now: float) -> list[H]:
        """Take out and return every hold whose slot has ended by ``now``."""
        out: list[H] = []
        while (slot := self._earliest()) is not None and slot * self._tick <= now:
            heapq.heappop(self._order)
            for hold in self._slots.pop(slot):
                del self._slot_of[hold]
                out.append(hold)
        return out
