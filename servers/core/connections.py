"""Live connections per transport, so that one transport's connections can be dropped at once."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rtplay.runtime.memory import oversized
from servers.core.load import LoadMeter

log = logging.getLogger(__name__)

Abort = Callable[[], None]


class ConnectionRegistry:
    """Maps transport name → the abort callbacks of its live connections."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, closed: Callable[[], None] | None = None) -> None:
        self._live: dict[str, set[Abort]] = defaultdict(set)
        self.clock = clock
        self._closed = closed
        """Told of every connection that ends (the server gives memory back after a burst)."""
        self.load = LoadMeter()
        """Accepts per second, concurrent connections and loop lag (what a crowd does)."""

    @contextmanager
    def track(self, transport: str, abort: Abort, ended: Callable[[], bool] | None = None) -> Iterator[None]:
        """Register a connection for the duration of the ``with`` block.

        ``ended`` is asked when the block ends: did the connection end with it? (None: it
        always does.) Only a connection that ends counts towards giving memory back: a
        long-poll answered on a connection kept alive frees its request, not the connection,
        and 5,000 of them a second made the server collect and trim every 2 s."""
        self._live[transport].add(abort)
        self.load.accepted(self.clock())
        try:
            yield
        finally:
            live = self._live[transport]
            live.discard(abort)
            if oversized(live):  # a burst has left: let its table go (see oversized)
                self._live[transport] = set(live)
            self.load.closed(self.clock())
            if self._closed is not None and (ended is None or ended()):
                self._closed()

    def count(self, transport: str) -> int:
        return len(self._live.get(transport, ()))

    def drop(self, transport: str | None = None) -> int:
        """Abort every live connection of ``transport`` (all when None); return how many."""
        names = [transport] if transport else list(self._live)
        dropped = 0
        for name in names:
            for abort in list(self._live.get(name, ())):
                try:
                    abort()
                except Exception:  # one broken connection must not stop the others dropping
                    log.exception("aborting a %s connection failed", name)
                dropped += 1
        return dropped
