"""Which WebRTC offers get a peer slot: half-open peers cannot starve the real clients (pure).

A peer is *half-open* from its answer until both its data channels are open. A client that
sends offers and never finishes them (19 a second did it) used to hold every slot for the
10 s set-up timeout, and real clients got 503. Now:

- a half-open peer has a deadline of its own, :data:`HALF_OPEN_TIMEOUT_S`;
- at the cap, the oldest half-open peer that has had :data:`MIN_HALF_OPEN_AGE_S` to finish
  is evicted to make room (established peers are never evicted for a newcomer);
- one source (an IP address) may hold at most :data:`HALF_OPEN_SHARE` half-open peers: past
  its share its new offer replaces its own oldest set-up, whatever its age, never anyone
  else's (a source can only hurt itself).

No clock and no sockets: ``now`` is passed in, peers are opaque keys.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

#: From the answer to both channels open. A loopback set-up takes ~50 ms and a browser's on a
#: LAN a few hundred; 3 s is ample, and short enough that unfinished offers do not pile up.
HALF_OPEN_TIMEOUT_S = 3.0

#: A half-open peer younger than this is never evicted for another source's offer: a set-up
#: needs ~50 ms on loopback and a few hundred on a LAN.
MIN_HALF_OPEN_AGE_S = 0.5

#: Half-open peers one source may hold: three quarters of the default 32 slots, so a crowd
#: starting from one address sets up 24 peers at once, and a flood of unfinished offers from
#: one address leaves 8 slots to everyone else.
HALF_OPEN_SHARE = 24


class NoRoom(Exception):
    """Every slot is taken by established peers or by set-ups still young: answer 503."""


@dataclass(frozen=True, slots=True)
class _Entry:
    source: str
    since: float


class Admission:
    """Half-open peers by age; decides whom a new offer evicts (see the module docstring)."""

    def __init__(self, share: int = HALF_OPEN_SHARE, min_age_s: float = MIN_HALF_OPEN_AGE_S) -> None:
        self.share = share
        self.min_age_s = min_age_s
        self._half_open: OrderedDict[Hashable, _Entry] = OrderedDict()

    @property
    def half_open(self) -> int:
        """Half-open peers now."""
        return len(self._half_open)

    def opened(self, key: Hashable, source: str, now: float) -> None:
        """``key`` was answered at ``now`` and is half-open until :meth:`done`."""
        self._half_open[key] = _Entry(source, now)

    def done(self, key: Hashable) -> None:
        """``key``'s channels opened, or it ended: it is half-open no more."""
        self._half_open.pop(key, None)

    def make_room(self, source: str, live: int, max_peers: int, now: float) -> list[Hashable]:
        """The half-open peers to evict so that an offer from ``source`` can have one of
        ``max_peers`` slots while ``live`` are taken (half-open ones included); :class:`NoRoom`
        when it cannot."""
        evict: list[Hashable] = []
        own = [k for k, e in self._half_open.items() if e.source == source]
        if len(own) >= self.share:
            evict += own[: len(own) - self.share + 1]
        excess = live - len(evict) + 1 - max_peers
        if excess > 0:
            others = [k for k in self._half_open if k not in evict]
            if len(others) < excess:
                raise NoRoom(f"too many WebRTC peers ({max_peers}); retry later")
            evict += self._old_enough(others[:excess], now)
        for key in evict:
            self._half_open.pop(key, None)
        return evict

    def _old_enough(self, keys: list[Hashable], now: float) -> list[Hashable]:
        if any(now - self._half_open[k].since < self.min_age_s for k in keys):
            raise NoRoom("the WebRTC peer slots are taken by set-ups in progress; retry later")
        return keys
