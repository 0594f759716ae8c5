"""Live connections per transport, so that one transport's connections can be dropped at once."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable

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

    def track(self, transport: str, abort: Abort, ended: Callable[[], bool] | None = None) -> Tracked:
        """Register a connection for the duration of the ``with`` block.

        ``ended`` is asked when the block ends: did the connection end with it? (None: it
        always does.) Only a connection that ends counts towards giving memory back: a
        long-poll answered on a connection kept alive frees its request, not the connection,
        and 5,000 of them a second made the server collect and trim every 2 s."""
        return Tracked(self, transport, abort, ended)

    def _enter(self, transport: str, abort: Abort) -> None:
        self._live[transport].add(abort)
        self.load.accepted(self.clock())

    def _exit(self, transport: str, abort: Abort, ended: Callable[[], bool] | None) -> None:
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


class Tracked:
    """The ``with`` block of :meth:`ConnectionRegistry.track`: a plain class, not a
    ``@contextmanager`` generator, because every long-poll request enters one (10,000 a
    second at 10,000 held long-polls: the generator and its helper were ~3 % of the server)."""

    __slots__ = ("_registry", "_transport", "_abort", "_ended")

    def __init__(self, registry: ConnectionRegistry, transport: str, abort: Abort, ended: Callable[[], bool] | None) -> None:
        self._registry = registry
        self._transport = transport
        self._abort = abort
        self._ended = ended

    def __enter__(self) -> None:
        self._registry._enter(self._transport, self._abort)

    def __exit__(self, *exc: object) -> None:
        self._registry._exit(self._transport, self._abort, self._ended)
