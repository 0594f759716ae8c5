"""Turns of the event loop shared fairly by a crowd's clients when they all notice at once.

A crowd runs thousands of clients on one event loop, each standing for a separate machine. When
an outage drops them all, the loop wakes every client in one turn, and each in turn notices,
decides its wait and arms its retry timer (~50 µs a client). A timer armed early in that turn
can fall due before the turn ends; it fires only when the loop next checks its timers, after
the last client's notice. Under full jitter that bunches every retry drawn shorter than the
turn (5,000 clients in a 0.5 s turn: ~300 of them, one 100 ms bin carrying twice the rate
around it), a burst that a fleet of separate machines would not make and that the crowd's
peak-attempts figure then reports as the policy's.

:class:`NoticeTurns` bounds that turn: at most :data:`NOTICES_PER_TURN` clients go on with
their notice in one turn of the loop; the rest wait for the next turns, between which the
loop fires the timers already due. A client alone (the playground's) passes at once.
"""

from __future__ import annotations

import asyncio
from collections import deque

#: Clients that may go on with their notice in one turn of the loop: 200 notices are ~10 ms of
#: a core (~30 ms on a busy one), well inside the 100 ms bins every attempts/s figure counts in.
NOTICES_PER_TURN = 200


class NoticeTurns:
    """At most ``per_turn`` clients pass :meth:`wait` in one turn of the running loop."""

    def __init__(self, per_turn: int = NOTICES_PER_TURN) -> None:
        if per_turn < 1:
            raise ValueError(f"per_turn must be at least 1, not {per_turn}")
        self.per_turn = per_turn
        self._left = per_turn
        self._waiting: deque[asyncio.Future[None]] = deque()
        """One future per client waiting (a client waits at most once: bounded by the crowd)."""
        self._refill_armed = False

    async def wait(self) -> None:
        """Return in this turn if it has room, else in a later one (first come, first served)."""
        if self._left > 0 and not self._waiting:
            self._left -= 1
            self._arm_refill()
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        self._arm_refill()
        await waiter  # cancelled: the future is done, and the next refill skips it

    def _arm_refill(self) -> None:
        """Refill at the next turn: a callback scheduled now runs after this turn's callbacks
        and after the timers that fall due meanwhile."""
        if not self._refill_armed:
            self._refill_armed = True
            asyncio.get_running_loop().call_soon(self._refill)

    def _refill(self) -> None:
        self._refill_armed = False
        self._left = self.per_turn
        while self._left > 0 and self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # it goes on in the next turn: charge it to this refill
                self._left -= 1
        if self._waiting or self._left < self.per_turn:
            self._arm_refill()  # those released run next turn; its own notices count from there
