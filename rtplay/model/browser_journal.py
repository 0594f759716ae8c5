"""The browser's figures from what its page received, by rtplay's one accounting model. Pure.

The page beside rtplay writes a journal (see ``servers/http/browser_journal.py``): seq runs
per channel, its clients' connections going up and down or failing, resets and live
markers. :class:`BrowserAccounts` replays it into the same :class:`~rtplay.model.channels.
ChannelStats` rtplay's own clients keep, so every browser figure — pending, lost, the
unreliable channels' up/down split, an EventSource that gave up — has exactly rtplay's
definition (:mod:`rtplay.model.accounting`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rtplay.model.accounting import SeqTracker, View, is_recoverable
from rtplay.model.channels import ChannelStats


class BrowserClient:
    """One of the page's clients, as rtplay accounts it."""

    def __init__(self, channels: Sequence[str], unreliable: Iterable[str], start: int = 0) -> None:
        live_only = set(unreliable)
        self.channels = tuple(channels)
        self.stats = {
            name: ChannelStats.unreliable() if name in live_only else ChannelStats() for name in self.channels
        }
        for stats in self.stats.values():
            stats.tracker = SeqTracker(start)
            if stats.live is not None:
                stats.live.tracker = stats.tracker
        self.connected = False
        self.failed_at: int | None = None
        """The newest seq the page had seen when this client gave up for good."""

    @property
    def cursor(self) -> int:
        return self.stats[self.channels[0]].tracker.highest

    def start(self, seq: int) -> None:
        """The client starts after ``seq`` (a fresh page subscribes from the hub's newest)."""
        for stats in self.stats.values():
            stats.tracker.skip_to(seq)

    def apply(self, kind: str, args: Sequence[object]) -> None:
        """One journal entry (its kind and the values after it)."""
        if kind == "start":
            self.start(_int(args[0]))
        elif kind == "seq":
            self._channel(args[0]).tracker.see_run(_int(args[1]), _int(args[2]))
        elif kind == "up":
            self.connected = True
            self.failed_at = None
        elif kind in ("down", "failed"):
            self.connected = False
            for stats in self.stats.values():
                if stats.live is not None:
                    stats.live.went_down(_int(args[1]))
            if kind == "failed":
                self.failed_at = _int(args[1])
        elif kind == "live":
            live = self._channel(args[0]).live
            if live is not None:
                live.live_from(_int(args[1]))
        elif kind == "reset":
            tracker = self._channel(args[0]).tracker
            first = _int(args[1])
            if first - 1 < tracker.highest:
                tracker.rewind(first)
            tracker.reset(first)

    def _channel(self, name: object) -> ChannelStats:
        if not isinstance(name, str) or name not in self.stats:
            raise ValueError(f"no channel {str(name)[:20]!r}")
        return self.stats[name]

    def view(self, published: int, replay_from: int, final: bool) -> View:
        """As :meth:`rtplay.clients.base.Client.view`: a client that gave up was subscribed
        only up to then; its reliable tail is lost, not pending."""
        failed = self.failed_at is not None
        if self.failed_at is not None:
            published = min(published, self.failed_at)
        return View(published, is_recoverable(failed, self.connected, self.cursor, replay_from), final)

    def figures(self, published: int, replay_from: int = 1, final: bool = False) -> dict[str, dict[str, object]]:
        """Per channel: delivered / pending / lost / … (rtplay's definitions)."""
        view = self.view(published, replay_from, final)
        return {name: stats.figures(view) for name, stats in self.stats.items()}


class BrowserAccounts:
    """Every client of one page, fed with its journal entries in order."""

    def __init__(self, channels: Mapping[str, Sequence[str]], unreliable: Mapping[str, Iterable[str]]) -> None:
        self._channels = channels
        self._unreliable = unreliable
        self.clients: dict[str, BrowserClient] = {}
        self.gaps = 0
        """Entries that never reached rtplay (the figures miss what they said)."""

    def client(self, name: str) -> BrowserClient:
        if name not in self.clients:
            if name not in self._channels:
                raise ValueError(f"unknown transport {name[:20]!r}")
            self.clients[name] = BrowserClient(self._channels[name], self._unreliable.get(name, ()))
        return self.clients[name]

    def feed(self, entries: Iterable[Sequence[object]]) -> None:
        """Apply entries in order; ``["*", "gap", N]`` counts N entries lost on the way."""
        for entry in entries:
            transport, kind = entry[0], entry[1]
            if transport == "*" and kind == "gap":
                self.gaps += _int(entry[2])
            elif isinstance(transport, str) and isinstance(kind, str):
                self.client(transport).apply(kind, entry[2:])

    def missed(self, n: int) -> None:
        """``n`` entries were asked for but no longer kept by the server."""
        self.gaps += n


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"not a seq: {str(value)[:20]!r}")
    return value
