"""The toxics of one proxy, in the order they were added. Pure.

Adding, changing or removing a toxic calls ``on_change`` with the toxic and what happened, so
the proxy's adapter can act on what is not per-unit (``drop`` aborts, ``outage`` takes the
listener down, a ``stall`` ending wakes the held streams). Errors are :class:`ToxicError` (bad
toxic) and :class:`ToxicExists` / :class:`ToxicNotFound`, which the API answers with 400, 409
and 404 as Toxiproxy does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum

from rtplay.proxy.toxics import Toxic, ToxicError, update_toxic

#: Toxics one proxy may hold: a handful is the norm; a script adding them in a loop must stop.
MAX_TOXICS = 64


class Change(str, Enum):
    ADDED = "added"
    UPDATED = "updated"
    REMOVED = "removed"


class ToxicExists(ToxicError):
    """A toxic of that name is on the proxy already (409)."""


class ToxicNotFound(LookupError):
    """No toxic of that name (404)."""


class ProxyToxics:
    """The toxics of one proxy."""

    def __init__(self, on_change: Callable[[Toxic, Change], None] = lambda toxic, change: None) -> None:
        self._toxics: dict[str, Toxic] = {}
        self._on_change = on_change

    def __iter__(self) -> Iterator[Toxic]:
        return iter(list(self._toxics.values()))

    def __len__(self) -> int:
        return len(self._toxics)

    def get(self, name: str) -> Toxic:
        try:
            return self._toxics[name]
        except KeyError:
            raise ToxicNotFound(f"toxic not found: {name}") from None

    def add(self, toxic: Toxic) -> Toxic:
        if toxic.name in self._toxics:
            raise ToxicExists(f"toxic already exists: {toxic.name}")
        if len(self._toxics) >= MAX_TOXICS:
            raise ToxicError(f"a proxy holds at most {MAX_TOXICS} toxics")
        self._toxics[toxic.name] = toxic
        self._on_change(toxic, Change.ADDED)
        return toxic

    def update(self, name: str, body: object) -> Toxic:
        toxic = update_toxic(self.get(name), body)
        self._toxics[name] = toxic
        self._on_change(toxic, Change.UPDATED)
        return toxic

    def remove(self, name: str) -> Toxic:
        toxic = self.get(name)
        del self._toxics[name]
        self._on_change(toxic, Change.REMOVED)
        return toxic

    def clear(self) -> None:
        for name in list(self._toxics):
            self.remove(name)

    def to_json(self) -> list[dict[str, object]]:
        return [t.to_json() for t in self._toxics.values()]
