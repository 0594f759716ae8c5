"""Target mode's share of every target client: read messages by the stated identity, judge
each reconnect, and cut the connection when a client-side ``drop`` fault says so.

A :class:`TargetTap` sits between one of rtplay's clients (pointed at a user's URL) and the
pure figures (:class:`~rtplay.model.target_stats.TargetStats`, :func:`~rtplay.model.resumption.judge`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from rtplay.model.accounting import SeqTracker
from rtplay.model.identity import MAX_MESSAGE_BYTES, Identified, Identity, Unreadable, UnreadableMessage
from rtplay.model.resumption import Reconnect, Verdict, judge, refused
from rtplay.model.target_stats import TargetStats

log = logging.getLogger(__name__)

#: Reconnect verdicts kept per target: one per reconnect; a run with more reconnects than
#: this keeps the newest (the report says how many there were).
MAX_VERDICTS = 1024

#: Largest poll or long-poll response body read: a batch of messages, each bounded by
#: MAX_MESSAGE_BYTES; four of the largest is more than any real batch of updates.
MAX_BODY_BYTES = 4 * MAX_MESSAGE_BYTES

#: Items of one JSON batch read; beyond them the rest of the batch is counted unread.
MAX_BATCH_ITEMS = 100_000

_STATUS = re.compile(r"HTTP (\d{3})")


class Dropped(OSError):
    """The client cut its own connection (the client-side ``drop`` fault)."""


class TargetTap:
    """One target's identity, figures and reconnect verdicts."""

    def __init__(
        self, transport: str, url: str, identity: Identity, clock: Callable[[], float], shown_url: str | None = None
    ) -> None:
        self.transport = transport
        self.target_url = url
        """Where the client connects (the target, or the proxy in front of it)."""
        self.shown_url = shown_url or url
        """The target's URL as the user gave it."""
        self.identity = identity
        self.clock = clock
        self.stats = TargetStats(identity.seq.kind != "none", bool(identity.time.path))
        self.verdicts: deque[tuple[float, Verdict]] = deque(maxlen=MAX_VERDICTS)
        """(monotonic time, verdict) of each judged reconnect."""
        self.reconnects_judged = 0
        self._lowest: int | None = None
        self._waiting: Reconnect | None = None
        """A reconnect whose first message has not arrived yet."""
        self._connections = 0
        self._open = False
        self._cut = asyncio.Event()
        self.on_cut: Callable[[], None] = lambda: None
        """How the live connection is dropped at once (a WebSocket's transport abort)."""
        self.on_verdict: Callable[[Verdict], None] = lambda verdict: None
        """Told each reconnect's verdict as it is judged (a pane's log shows it)."""
        self.arrival_hook: Callable[[Identified, float], None] | None = None
        """Called with every readable message and its receive time (epoch ms), to audit figures."""

    # --- URLs and connections ------------------------------------------------------------

    def url(self) -> str:
        """The URL of the next request or connection: the resume template filled with the
        cursor once there is one."""
        if self.identity.resume is None:
            return self.target_url
        return self.identity.resume.url(self.target_url, self.stats.cursor)

    def resume_asked(self) -> str | None:
        """What the next connection asks to resume from, via the template; None: nothing."""
        if self.identity.resume is None or self.stats.cursor is None:
            return None
        return self.url().removeprefix(self.target_url).lstrip("?&") or None

    def connected(self, asked: str | None) -> None:
        """A connection opened, asking to resume with ``asked`` (None: nothing)."""
        self._open = True
        self._connections += 1
        if self._connections > 1:
            self._settle_waiting()
            self._waiting = Reconnect(asked, self.stats.cursor, self._lowest, None)

    def ended(self, reason: str) -> None:
        """An attempt ended; one that never opened with an HTTP status was a refusal."""
        if not self._open and self._connections >= 1 and (match := _STATUS.search(reason)):
            self._verdict(refused(f"HTTP {match.group(1)}"))
        self._open = False

    def _verdict(self, verdict: Verdict) -> None:
        self.reconnects_judged += 1
        self.verdicts.append((self.clock(), verdict))
        self.on_verdict(verdict)
        log.info("%s target: %s", self.transport, verdict.words)

    def _settle_waiting(self) -> None:
        if self._waiting is not None:
            self._verdict(judge(self._waiting))
            self._waiting = None

    # --- messages --------------------------------------------------------------------------

    def take(self, message: str | bytes, event_id: str | None, received_ms: float) -> None:
        """One message as received (an SSE event's data, a frame)."""
        try:
            identified = self.identity.identify(message, event_id)
        except UnreadableMessage as exc:
            self.unreadable(exc)
            return
        self._account(identified, received_ms)

    def take_batch(self, body: bytes, received_ms: float) -> None:
        """A poll or long-poll answer: a JSON array is one message per item, anything else one
        message."""
        if not body.strip():
            return
        try:
            decoded: object = json.loads(body)
        except (ValueError, RecursionError):
            self.take(body, None, received_ms)
            return
        items = decoded if isinstance(decoded, list) else [decoded]
        for item in items[:MAX_BATCH_ITEMS]:
            try:
                identified = self.identity.identify_decoded(item)
            except UnreadableMessage as exc:
                self.unreadable(exc)
                continue
            self._account(identified, received_ms)

    def unreadable(self, exc: UnreadableMessage) -> None:
        """Count a message the identity cannot read (once per kind, it is logged)."""
        if self.stats.unreadable[exc.why] == 0:
            log.warning("%s target: unreadable message (%s): %s", self.transport, exc.why.value, exc)
        self.stats.on_unreadable(exc.why, self.clock())

    def oversized(self) -> None:
        """A message too large to read arrived (and ended its connection)."""
        self.unreadable(UnreadableMessage(Unreadable.OVERSIZED, f"a message over {MAX_MESSAGE_BYTES} bytes"))

    def _account(self, identified: Identified, received_ms: float) -> None:
        self.stats.on_message(identified, received_ms, self.clock())
        if self.arrival_hook is not None:
            self.arrival_hook(identified, received_ms)
        if identified.seq is not None:
            self._lowest = identified.seq if self._lowest is None else min(self._lowest, identified.seq)
        if self._waiting is not None:
            waiting, self._waiting = self._waiting, None
            self._verdict(judge(Reconnect(waiting.asked, waiting.highest_before, waiting.lowest_ever, identified.seq)))

    def restart_counting(self) -> None:
        """Zero the figures (the user's reset); the cursor carries on, so loss stays exact."""
        cursor = self.stats.cursor
        self.stats = TargetStats(self.stats.has_seq, self.stats.has_time)
        if cursor is not None:
            self.stats.tracker = SeqTracker(cursor)
        self.verdicts.clear()

    # --- the client-side drop ----------------------------------------------------------------

    def cut(self) -> None:
        """Drop the live connection now (the client-side ``drop`` fault)."""
        self._cut.set()

    async def cuttable(self, attempt: Coroutine[Any, Any, str]) -> str:
        """Run one attempt; a :meth:`cut` ends it with :class:`Dropped`."""
        self._cut.clear()
        task = asyncio.ensure_future(attempt)
        cutter = asyncio.ensure_future(self._cut.wait())
        try:
            await asyncio.wait({task, cutter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cutter.cancel()
            if not task.done():
                self.on_cut()
                task.cancel()
                await asyncio.wait({task})  # its own cancellation; ours still propagates
        if task.cancelled():
            raise Dropped("connection dropped (client-side drop fault)")
        return task.result()

    # --- the report ------------------------------------------------------------------------

    def report(self, now: float) -> dict[str, object]:
        """The figures and the reconnect verdicts."""
        verdicts = list(self.verdicts)
        if self._waiting is not None:
            verdicts.append((now, judge(self._waiting)))
        via = {"via": self.target_url} if self.shown_url != self.target_url else {}
        head = {"url": self.shown_url, **via, "identity": self.describe_identity()}
        return head | self.stats.report(self.transport, now) | {
            "resumption": [{"at": round(at, 3), "outcome": v.outcome.value, "words": v.words} for at, v in verdicts],
        }

    def describe_identity(self) -> dict[str, str | None]:
        """The stated adapters, as the user would write them."""
        resume = self.identity.resume
        return {"seq": str(self.identity.seq), "time": str(self.identity.time),
                "resume": str(resume) if resume is not None else None}
