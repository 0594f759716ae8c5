"""What the server tells its followers (``GET /control/events``): a bounded fan-out. No I/O.

The events are :mod:`rtplay.protocol.control_events`' typed events (hello, fault, reset, rate,
counters_reset, publisher, listeners, bye), encoded on the wire in that module only.
"""

from __future__ import annotations

import asyncio
from collections import deque

from rtplay.protocol.control_events import ControlEvent

#: Events queued for one follower before it is cut: minutes of normal traffic (a handful of
#: events a second), so only a follower that stopped reading reaches it.
MAX_QUEUED_EVENTS = 1024

#: How often the publisher's figures go out: the session's "published" lags by at most this.
PUBLISHER_EVERY_S = 0.1

TOO_FAR_BEHIND = f"follower fell {MAX_QUEUED_EVENTS} events behind"

Event = ControlEvent


class Feed:
    """One follower's bounded queue of events."""

    def __init__(self) -> None:
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.reason = ""
        """Why the feed was closed; empty while open."""

    def push(self, event: Event) -> None:
        if self.reason:
            return
        if len(self._items) >= MAX_QUEUED_EVENTS:
            self.close(TOO_FAR_BEHIND)
            return
        self._items.append(event)
        self._ready.set()

    def close(self, reason: str) -> None:
        if not self.reason:
            self.reason = reason
            self._ready.set()

    async def next_batch(self) -> list[Event] | None:
        """Everything queued (waiting for at least one event); None once closed and drained."""
        while not self._items:
            if self.reason:
                return None
            self._ready.clear()
            await self._ready.wait()
        batch = list(self._items)
        self._items.clear()
        return batch


class EventBus:
    """Fans events out to every follower."""

    def __init__(self) -> None:
        self._feeds: set[Feed] = set()

    def subscribe(self) -> Feed:
        feed = Feed()
        self._feeds.add(feed)
        return feed

    def unsubscribe(self, feed: Feed) -> None:
        self._feeds.discard(feed)

    def publish(self, event: Event) -> None:
        for feed in list(self._feeds):
            feed.push(event)

    def close_all(self, reason: str) -> None:
        for feed in list(self._feeds):
            feed.close(reason)

    @property
    def followers(self) -> int:
        return len(self._feeds)
