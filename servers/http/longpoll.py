"""The /longpoll endpoint: held requests answered by the publisher, all at once.

A long-poll at the head of the stream waits for the next envelope. Each used to wait on its
own: one timer for its hold, one wake-up per publish to read the backlog again, its own body
built and encoded. At 5,000 long-pollers a wave (one publish answering all of them) cost
1.8 s at p99. Here the waiting requests are filed with :class:`HeldPolls`, which the
broadcaster calls on every publish: it reads the backlog and builds the answer once per
cursor (every held request at the head shares one cursor, so one body for all of them) and
hands it to every request waiting there, starting in the publish itself and
:data:`ANSWERS_PER_TURN` at a time, one batch per turn of the event loop, so that a wave of
10,000 answers never holds the loop for all of them at once. A held request is one future,
answered once; the holds' deadlines share one timer (:mod:`servers.http.longpoll_wheel`), and
on a dense stream the coalescing window (:data:`LONGPOLL_COALESCE_S`) is one timer for all.

Faults act per request exactly as before: ``error`` and ``stall`` in the middleware before
the request is held, ``throttle`` on the body as the request sends it, ``delay`` on the ready
answer in the middleware, ``drop`` on the connection (its request stays filed until its
answer or its deadline, as it stayed asleep before).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable

from aiohttp import web

from rtplay.protocol.envelope import Envelope
from rtplay.protocol.faults import Kind
from servers.core.context import ServerContext, Throttle
from servers.core.hub import Hub
from servers.http import answers
from servers.http.answers import batch_json
from servers.http.common import CTX, aborter, bad_request, closed_check, cursor_of
from servers.http.longpoll_wheel import HoldWheel

log = logging.getLogger(__name__)

#: Longest a long-poll may be held, whatever the client asks.
MAX_LONGPOLL_TIMEOUT_S = 60.0

#: A long-poll answer waits until its oldest message is this old, so that it carries the
#: messages published meanwhile too: a request costs ~1 ms of CPU (client and server), and at
#: 1000 msg/s an answer at once carried a single publisher burst (~4 messages), so long-poll
#: took a third of a core. 20 ms makes ~20 messages an answer, ~50 requests a second, for
#: at most 20 ms more latency (~10 ms on average). Only while messages come closer together
#: than :data:`DENSE_GAP_MS` (≥ 200 msg/s): at lower rates an answer goes out at once.
LONGPOLL_COALESCE_S = 0.02

#: Envelopes stamped closer together than this make a stream dense enough to coalesce.
DENSE_GAP_MS = 5.0


def coalesce_delay(oldest_ms: float, gap_ms: float | None, now_ms: float) -> float:
    """Seconds a long-poll answer whose oldest message was stamped ``oldest_ms`` waits to
    carry more (see :data:`LONGPOLL_COALESCE_S`); 0 while the stream is sparse (the two
    newest envelopes ``gap_ms`` apart, None: fewer than two)."""
    if gap_ms is None or gap_ms >= DENSE_GAP_MS:
        return 0.0
    return max(0.0, (oldest_ms + LONGPOLL_COALESCE_S * 1000 - now_ms) / 1000)


#: Answer bodies kept for sharing between two publishes, one per cursor asked for. Most
#: requests ask at the head or one message behind it: a few entries serve them all; clients
#: scattered over many cursors each get a body of their own past this bound. An entry is at
#: most one answer piece (64 KiB: larger answers are not shared), so at most 4 MiB.
MAX_SHARED_BODIES = 64


#: Held requests answered per turn of the event loop. An answer wakes its request's task, which
#: writes the response and reads the client's next request: ~100-150 µs each on a small VM, so a
#: wave answered at once held the loop ~1 s at 10,000 held long-polls (every other client, and
#: the wave's own re-requests, waited behind it). 256 answers are a turn of ~30 ms; the rest of
#: the wave waits for the next turn, after the loop has polled its sockets.
ANSWERS_PER_TURN = 256


class Outcome(enum.Enum):
    """How a hold ended when it brought no shared body."""

    TIMED_OUT = "timed out"
    """Nothing after the cursor within the hold: 204."""
    READY = "ready"
    """Something is there, too large to share: the request writes it in pieces itself."""


Answer = bytes | Outcome
"""What a held request gets: the shared body (JSON, encoded) or an :class:`Outcome`."""


class _Held:
    """One held request: its cursor and the future its handler awaits."""

    __slots__ = ("cursor", "future")

    def __init__(self, cursor: int, future: asyncio.Future[Answer]) -> None:
        self.cursor = cursor
        self.future = future

    def answer(self, answer: Answer) -> None:
        if not self.future.done():
            self.future.set_result(answer)


class HeldPolls:
    """Every held long-poll of one listener, answered from the publisher (see the module).

    ``shaped`` says whether a fault shapes long-poll answers (a throttle or a delay: they hold
    the answer anyway, so a coalescing window on top would only grow the next body).
    """

    def __init__(self, hub: Hub, shaped: Callable[[], bool]) -> None:
        self._hub = hub
        self.shaped = shaped
        """Whether a fault shapes long-poll answers now."""
        self._by_cursor: dict[int, set[_Held]] = {}
        self._wheel: HoldWheel[_Held] = HoldWheel()
        self._hold_timer: asyncio.TimerHandle | None = None
        self._flush_timer: asyncio.TimerHandle | None = None
        self._bodies: dict[int, bytes] = {}
        """Answer bodies by cursor, for the hub as it was when they were built (_bodies_for)."""
        self._bodies_for = (-1, -1)
        self.bodies = 0
        """Answer bodies built so far (one per cursor asked for between two publishes)."""
        self._due: deque[tuple[int, list[_Held]]] = deque()
        """Requests a flush took out to answer, by cursor, not yet answered (a wave in turns)."""
        self._turn: asyncio.Handle | None = None
        """The next turn's batch of answers, while some are due."""
        self.turns = 0
        """Turns of the event loop that answered held requests so far."""
        self._loop: asyncio.AbstractEventLoop | None = None

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, looked up once: CPython 3.11's ``asyncio.get_running_loop()``
        checks the process id with a ``getpid()`` system call every time (2 % of the server's
        time at 10,000 held long-polls, one per request)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    def __len__(self) -> int:
        return len(self._wheel)

    async def wait(self, cursor: int, timeout: float, coalesce_s: float = 0.0) -> Answer:
        """Hold a request at ``cursor`` until the publisher answers it or ``timeout`` s pass.

        ``coalesce_s`` > 0: the backlog after ``cursor`` is not empty but young; the request
        is answered with everyone else's when the shared coalescing window ends."""
        loop = self._event_loop()
        held = _Held(cursor, loop.create_future())
        self._by_cursor.setdefault(cursor, set()).add(held)
        if self._wheel.add(held, loop.time() + timeout):
            self._arm_holds(loop)
        if coalesce_s > 0:
            self._arm_flush(loop, coalesce_s)
        try:
            return await held.future
        finally:
            self._forget(held)

    def published(self, envelope: Envelope) -> None:
        """The broadcaster's listener: answer the held requests now, or when the coalescing
        window of a dense stream ends (one timer for all of them)."""
        if not self._by_cursor:
            return
        delay = 0.0 if self.shaped() else coalesce_delay(envelope.t, self._hub.gap_ms(), time.time() * 1000)
        if delay <= 0:
            self.flush()
        elif self._flush_timer is None:
            self._arm_flush(self._event_loop(), delay)

    def flush(self) -> None:
        """Answer every held request that has something after its cursor: one body per cursor,
        :data:`ANSWERS_PER_TURN` requests now and as many in each following turn of the loop."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        last = self._hub.last_seq
        for cursor in [c for c in self._by_cursor if c < last]:
            self._due.append((cursor, list(self._by_cursor.pop(cursor))))
        if self._due and self._turn is None:
            self._answer_turn()

    def _answer_turn(self) -> None:
        """Answer up to :data:`ANSWERS_PER_TURN` due requests; the rest in the next turn. Each
        cursor's body is read when its requests are answered, so a publish during the wave
        reaches the requests not yet answered."""
        self._turn = None
        self.turns += 1
        budget = ANSWERS_PER_TURN
        while self._due and budget > 0:
            cursor, waiting = self._due[0]
            answer: Answer = self.body(cursor) or Outcome.READY
            batch = waiting[-budget:]
            del waiting[-budget:]
            for held in batch:
                self._wheel.discard(held)
                held.answer(answer)
            budget -= len(batch)
            if not waiting:
                self._due.popleft()
        if self._due:
            self._turn = self._event_loop().call_soon(self._answer_turn)

    def body(self, cursor: int) -> bytes | None:
        """The answer after ``cursor`` now (None: too large to share, it goes out in pieces),
        built once for every request that asks until the next publish: when the server falls
        behind, the clients it answered late come back one message behind, all at one cursor."""
        hub = self._hub
        state = (hub.last_seq, hub.first_available)
        if state != self._bodies_for:
            self._bodies.clear()
            self._bodies_for = state
        body = self._bodies.get(cursor)
        if body is None:
            backlog = hub.since(cursor)
            if answers.is_large(backlog):
                return None
            body = batch_json(backlog, hub.last_seq).encode()
            self.bodies += 1
            if len(self._bodies) < MAX_SHARED_BODIES:
                self._bodies[cursor] = body
        return body

    def close(self) -> None:
        """Stop the timers (the listener is going away); requests still held end as timed out."""
        for timer in (self._hold_timer, self._flush_timer, self._turn):
            if timer is not None:
                timer.cancel()
        self._hold_timer = self._flush_timer = self._turn = None
        for waiting in [*self._by_cursor.values(), *(due for _, due in self._due)]:
            for held in waiting:
                held.answer(Outcome.TIMED_OUT)
        self._due.clear()

    def _forget(self, held: _Held) -> None:
        self._wheel.discard(held)
        waiting = self._by_cursor.get(held.cursor)
        if waiting is not None:
            waiting.discard(held)
            if not waiting:
                del self._by_cursor[held.cursor]

    def _arm_flush(self, loop: asyncio.AbstractEventLoop, delay: float) -> None:
        due = loop.time() + delay
        if self._flush_timer is not None and self._flush_timer.when() <= due:
            return
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        self._flush_timer = loop.call_at(due, self.flush)

    def _arm_holds(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._hold_timer is not None:
            self._hold_timer.cancel()
        due = self._wheel.next_due()
        self._hold_timer = None if due is None else loop.call_at(due, self._end_holds)

    def _end_holds(self) -> None:
        self._hold_timer = None
        loop = self._event_loop()
        for held in self._wheel.due(loop.time()):
            held.answer(Outcome.TIMED_OUT)
        self._arm_holds(loop)


HELD: web.AppKey[HeldPolls] = web.AppKey("rtplay-held-longpolls", HeldPolls)


def install_held_polls(app: web.Application, ctx: ServerContext) -> None:
    """Give ``app`` its :class:`HeldPolls`, told of every publish while the app runs."""

    def shaped() -> bool:
        faults = ctx.faults
        return not faults.none_active() and bool(faults.throttle_for("longpoll") or faults.has(Kind.DELAY, "longpoll"))

    held = app[HELD] = HeldPolls(ctx.broadcaster.hub, shaped)

    async def start(_: web.Application) -> None:
        ctx.broadcaster.add_listener(held.published)

    async def stop(_: web.Application) -> None:
        ctx.broadcaster.remove_listener(held.published)
        held.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)


async def longpoll(request: web.Request) -> web.StreamResponse:
    ctx = request.app[CTX]
    since = cursor_of(request.query.get("since"))
    raw_timeout = request.query.get("timeout")
    try:
        timeout = float(raw_timeout) if raw_timeout else ctx.config.longpoll_timeout_s
    except ValueError:
        return bad_request(f"timeout must be a number of seconds, got {(raw_timeout or '')[:40]!r}")
    if not 0 <= timeout <= MAX_LONGPOLL_TIMEOUT_S:
        return bad_request(f"timeout must be 0-{MAX_LONGPOLL_TIMEOUT_S:g} s")
    hub = ctx.broadcaster.hub
    # The request ends, not its connection, unless the client left (see ConnectionRegistry.track).
    with ctx.registry.track("longpoll", aborter(request), ended=closed_check(request)):
        backlog = hub.since(since)
        answer: Answer = Outcome.READY
        if not backlog.messages and backlog.reset is None:
            if timeout <= 0:
                return web.Response(status=204)
            answer = await request.app[HELD].wait(since, timeout)
        elif backlog.reset is None and not request.app[HELD].shaped():
            hold = coalesce_delay(backlog.messages[0].t, hub.gap_ms(), time.time() * 1000)
            if hold > 0:  # a young backlog on a dense stream: answered with the next flush
                answer = await request.app[HELD].wait(since, timeout, coalesce_s=min(hold, timeout))
        if answer is Outcome.TIMED_OUT:
            return web.Response(status=204)
        if answer is Outcome.READY:  # answered at once (a client behind), or a large answer
            answer = request.app[HELD].body(since) or Outcome.READY
        if isinstance(answer, bytes):
            if not ctx.faults.none_active():  # (spares a bucket and a closure per request)
                await Throttle(ctx, "longpoll", closed_check(request))(len(answer))
            return web.Response(body=answer, content_type="application/json", charset="utf-8")
        backlog = hub.since(since)  # in pieces, at its reader's pace (servers.http.answers)
        await Throttle(ctx, "longpoll", closed_check(request))(answers.answer_length(backlog, hub.last_seq))
        return await answers.send_pieces(request, backlog, hub.last_seq, ctx.config.stream_write_timeout_s)
