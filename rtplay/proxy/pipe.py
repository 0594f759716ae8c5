"""One direction of one proxied connection: a bounded, ordered queue that applies the toxics.

The reader side :meth:`Pipe.put`\\ s units as they arrive (it waits when the pipe is full, so a
slow reader slows the sender instead of growing memory); the pipe's task asks the
:class:`~rtplay.proxy.shaping.Shaper` when and how each unit goes out, waits for that moment
(a timer, never a polling loop) and calls ``send``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from rtplay.proxy.shaping import REORDER_HOLD_S, Shaper, Step, stalled
from rtplay.proxy.toxics import Toxic

log = logging.getLogger(__name__)

#: Bytes one direction of one connection may hold queued: a few chunks or messages of
#: ordinary size. Past it :meth:`Pipe.put` waits, which stops reading the sender, so TCP
#: flow control pushes back instead of the proxy buffering a slow reader's backlog. One unit
#: is always admitted, so a unit larger than this (up to the message size limit) still passes.
MAX_PIPE_BYTES = 1 << 20

U = TypeVar("U")


class ToxicSource:
    """What a pipe needs from its proxy: the current toxics, and a wake-up when they change."""

    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.toxics: Callable[[], Iterable[Toxic]] = lambda: ()

    def notify(self) -> None:
        """The toxics changed: wake every pipe waiting for that."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def changed(self) -> None:
        await self._changed.wait()


@dataclass
class Unit(Generic[U]):
    payload: U
    size: int
    arrived: float
    message: bool


class Pipe(Generic[U]):
    """Forwards units in order through the toxics; ``send`` does the I/O."""

    def __init__(
        self, kind: Callable[[], str], stream: str, source: ToxicSource, shaper: Shaper,
        send: Callable[[U, Step], Awaitable[None]], clock: Callable[[], float],
    ) -> None:
        self._kind = kind
        self.stream = stream
        self._source = source
        self._shaper = shaper
        self._send = send
        self._clock = clock
        self._units: deque[Unit[U] | None] = deque()
        self._bytes = 0
        self._cond = asyncio.Condition()
        self.closed_by_toxic = False
        """``limit_data`` ended the connection."""
        self.lost = 0
        self._error: BaseException | None = None
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"pipe-{stream}")

    async def put(self, payload: U, size: int, message: bool) -> None:
        """Queue a unit that arrived now (waits while the pipe is full)."""
        arrived = self._clock()
        async with self._cond:
            await self._cond.wait_for(
                lambda: self.task.done() or not self._units or self._bytes + size <= MAX_PIPE_BYTES
            )
            if self.task.done():
                raise self._error or ConnectionResetError("the pipe ended")
            self._units.append(Unit(payload, size, arrived, message))
            self._bytes += size
            self._cond.notify_all()

    async def finish(self) -> None:
        """No more units: send what is queued, then end."""
        async with self._cond:
            self._units.append(None)
            self._cond.notify_all()
        await asyncio.shield(self.task)

    def cancel(self) -> None:
        self.task.cancel()

    async def _take(self, timeout: float | None) -> Unit[U] | None | bool:
        """The next unit, None at the end, False when ``timeout`` passed first."""
        async with self._cond:
            try:
                await asyncio.wait_for(self._cond.wait_for(lambda: bool(self._units)), timeout)
            except TimeoutError:
                return False
            unit = self._units.popleft()
            if unit is not None:
                self._bytes -= unit.size
            self._cond.notify_all()
            return unit

    async def _wait_unstalled(self) -> None:
        while stalled(self._source.toxics(), self._kind(), self.stream):
            await self._source.changed()

    async def _run(self) -> None:
        try:
            await self._forward()
        except Exception as exc:  # the peer went away mid-write: the reader must stop too
            self._error = exc
            raise
        finally:
            async with self._cond:
                self._cond.notify_all()

    async def _forward(self) -> None:
        held: tuple[Unit[U], Step] | None = None
        while True:
            unit = await self._take(REORDER_HOLD_S if held else None)
            if unit is False or unit is None:
                if held is not None:
                    await self._send(held[0].payload, held[1])
                    held = None
                if unit is None:
                    return
                continue
            assert isinstance(unit, Unit)
            await self._wait_unstalled()
            toxics = self._shaper.active(self._source.toxics(), self._kind(), self.stream)
            step = self._shaper.plan(toxics, unit.size, unit.arrived, unit.message)
            delay = step.due - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            if step.copies == 0:
                self.lost += 1
                continue
            if step.hold and held is None:
                held = (unit, step)
                continue
            for _ in range(step.copies):
                await self._send(unit.payload, step)
            if held is not None:
                await self._send(held[0].payload, held[1])
                held = None
            if step.closes:
                self.closed_by_toxic = True
                return
