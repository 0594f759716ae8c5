"""The browser page's journal: what its clients received, for rtplay to account.

The page does not report its own lost / pending figures for rtplay to trust; it reports what
happened, in order — seq runs per channel, connections up and down, resets, live markers —
and rtplay computes the browser's figures from that with its own accounting model
(:mod:`rtplay.model.browser_journal`). Each report carries the entries the server has not
acknowledged yet (``{"from": K, "entries": [...]}``, K the index of the first); the server
appends the new ones, so a report that is re-sent after a lost answer adds nothing twice.
rtplay reads them back with ``GET /browser/journal?page=ID&from=N``.

Entries (``[transport, kind, ...]``): ``start S``; ``seq CH LO HI``; ``up MS``; ``down MS P``;
``failed MS P``; ``live CH FIRST``; ``reset CH FIRST`` (MS wall-clock milliseconds, P the
newest seq the page had seen).
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Any

#: Largest number an entry may hold: wall-clock milliseconds (1.8e12 today) fit for centuries.
MAX_NUMBER = 1e13


class JournalError(ValueError):
    """A journal that is not what the page sends; the message says where."""


#: Entries one report may carry (the page sends at most 1,000; ~40 bytes each).
MAX_ENTRIES_PER_REPORT = 1000

#: Entries kept per page for rtplay to read: a healthy page adds ~25 a second (six clients, a
#: run per channel per report), so 200,000 hold over two hours; rtplay reads them four times
#: a second. Older ones are dropped and a reader that asks for them is told how many it missed.
MAX_KEPT_ENTRIES = 200_000

#: Entries one read returns (a reader asks again from ``next``).
MAX_READ_ENTRIES = 20_000

#: Longest run of seqs in one entry: a resume from the start of a full replay buffer brings
#: 10,000 (the default) at once; ten times that leaves room for a larger buffer and bounds
#: what one entry from any page can ask rtplay to account.
MAX_RUN = 100_000

KINDS = {"start": ("seq",), "seq": ("name", "seq", "seq"), "up": ("num",), "down": ("num", "seq"),
         "failed": ("num", "seq"), "live": ("name", "seq"), "reset": ("name", "seq")}
"""Each kind and the types of its arguments after ``[transport, kind]``."""

_NAMES = ("main", "stream", "datagram", "reliable", "unreliable")


def _arg(kind: str, value: object, where: str) -> Any:
    if kind == "name":
        if value not in _NAMES:
            raise JournalError(f"{where}: unknown channel {str(value)[:20]!r}")
        return value
    if kind == "seq":
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < MAX_NUMBER:
            raise JournalError(f"{where}: a seq must be a non-negative integer")
        return value
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < MAX_NUMBER:
        raise JournalError(f"{where}: a time must be a non-negative number")
    return value


def parse_entry(raw: object, where: str, transports: set[str]) -> list[Any]:
    """One entry, checked; :class:`JournalError` says what is wrong."""
    if not isinstance(raw, list) or len(raw) < 2 or raw[0] not in transports or raw[1] not in KINDS:
        raise JournalError(f"{where} must be [transport, kind, ...] with a known transport and kind")
    types = KINDS[raw[1]]
    if len(raw) != 2 + len(types):
        raise JournalError(f"{where}: {raw[1]} takes {len(types)} values")
    entry = [raw[0], raw[1], *(_arg(t, v, where) for t, v in zip(types, raw[2:], strict=False))]
    if raw[1] == "seq" and not 0 <= entry[4] - entry[3] < MAX_RUN:
        raise JournalError(f"{where}: a run goes up, by at most {MAX_RUN} seqs")
    return entry


def parse_journal(raw: object, transports: set[str]) -> tuple[int, list[list[Any]]]:
    """A report's ``journal`` → (index of its first entry, entries)."""
    if not isinstance(raw, dict):
        raise JournalError("journal must be an object")
    start, entries = raw.get("from"), raw.get("entries")
    if not isinstance(start, int) or isinstance(start, bool) or not 0 <= start < MAX_NUMBER:
        raise JournalError("journal.from must be a non-negative integer")
    if not isinstance(entries, list) or len(entries) > MAX_ENTRIES_PER_REPORT:
        raise JournalError(f"journal.entries must be a list of at most {MAX_ENTRIES_PER_REPORT}")
    return start, [parse_entry(e, f"journal.entries[{i}]", transports) for i, e in enumerate(entries)]


class Journal:
    """One page's journal as the server keeps it: the newest :data:`MAX_KEPT_ENTRIES`.

    The server numbers entries itself: where the page dropped entries before they got here
    (its own bound, during a long outage) it keeps a ``["*", "gap", N]`` entry in their place.
    """

    def __init__(self) -> None:
        self.entries: deque[list[Any]] = deque(maxlen=MAX_KEPT_ENTRIES)
        self.next = 0
        """Index of the next entry kept."""
        self.page_next = 0
        """The page's index of the next entry it will send."""

    @property
    def first(self) -> int:
        """Index of the oldest entry kept."""
        return self.next - len(self.entries)

    def _append(self, entry: list[Any]) -> None:
        self.entries.append(entry)
        self.next += 1

    def add(self, start: int, entries: list[list[Any]]) -> None:
        """The page's entries from its index ``start``; those already kept are skipped (a
        report re-sent after its answer was lost)."""
        if start > self.page_next:
            self._append(["*", "gap", start - self.page_next])
            self.page_next = start
        for entry in entries[self.page_next - start:]:
            self._append(entry)
            self.page_next += 1

    def read(self, start: int) -> dict[str, Any]:
        """Entries from index ``start`` (at most :data:`MAX_READ_ENTRIES`); ``missed`` counts
        those asked for that are no longer kept."""
        first = self.first
        begin = min(max(start, first), self.next)
        items = list(islice(self.entries, begin - first, begin - first + MAX_READ_ENTRIES))
        return {"from": begin, "next": begin + len(items), "entries": items, "missed": max(0, first - start)}
