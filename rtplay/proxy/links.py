"""A live proxied connection as the proxy's faults see it, and what the relays share.

:class:`RelayContext` is everything a relay (HTTP, SSE, WebSocket) needs from its proxy — passed
in, never the proxy itself. :class:`Link` is one live connection: what ``drop``, ``reset_peer``
and ``timeout`` act on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from rtplay.proxy.pipe import ToxicSource
from rtplay.proxy.shaping import Shaper
from rtplay.proxy.toxics import DOWNSTREAM, Toxic
from rtplay.proxy.wire import Connection, WireView

log = logging.getLogger(__name__)

#: Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded; plus Host and Content-Length, which
#: the proxy's own side of each hop sets.
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length",
})


def forward_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The end-to-end headers of a request or response (a multidict), as a list-preserving dict."""
    out: dict[str, str] = {}
    for name, value in headers.items():
        if name.lower() in HOP_BY_HOP:
            continue
        out[name] = f"{out[name]}, {value}" if name in out and name.lower() != "set-cookie" else value
    return out


@dataclass
class RelayContext:
    """What the relays need from their proxy."""

    upstream: URL
    """The upstream's base URL (scheme, host, port, optional path prefix)."""
    session: aiohttp.ClientSession
    source: ToxicSource
    wire: WireView
    clock: Callable[[], float]
    rng: random.Random
    links: set[Link] = field(default_factory=set)

    def target(self, path_qs: str) -> URL:
        """The upstream URL for a request's path and query."""
        base = str(self.upstream).rstrip("/")
        return URL(base + path_qs, encoded=True)

    def shaper(self) -> Shaper:
        """A fresh pacing state with its own RNG stream (drawn from the proxy's seeded RNG)."""
        return Shaper(random.Random(self.rng.getrandbits(64)))

    def toxics(self) -> list[Toxic]:
        """The proxy's toxics now."""
        return list(self.source.toxics())


def cancels_current_task() -> Callable[[], None]:
    """A callable that cancels the task running now (a relay's handler) — from elsewhere only."""
    handler = asyncio.current_task()

    def cancel() -> None:
        if handler is not None and handler is not asyncio.current_task():
            handler.cancel()

    return cancel


class Link:
    """One live connection: the client's transport and the timers faults set on it."""

    def __init__(
        self, conn: Connection, transport: asyncio.BaseTransport | None, on_abort: Callable[[], None], shaper: Shaper
    ) -> None:
        self.conn = conn
        self.shaper = shaper
        """The downstream pacing state: which toxics this connection got is drawn there, once."""
        self._transport = transport
        self._on_abort = on_abort
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.aborted_by = ""

    @property
    def kind(self) -> str:
        """The connection's kind of traffic (``http``, ``sse``, ``ws``)."""
        return self.conn.kind

    def abort(self, why: str) -> None:
        """End the connection abruptly (a TCP reset for the client): ``drop``, ``reset_peer``."""
        if self.aborted_by:
            return
        self.aborted_by = why
        log.info("proxy: aborting connection %d (%s %s): %s", self.conn.id, self.conn.kind, self.conn.path, why)
        self._on_abort()
        if self._transport is not None and not self._transport.is_closing():
            abort = getattr(self._transport, "abort", None)
            if abort is not None:
                abort()
            else:
                self._transport.close()

    def refresh(self, toxics: list[Toxic]) -> None:
        """Arm or disarm the connection-level timers of ``reset_peer`` and ``timeout``."""
        wanted: dict[str, float] = {}
        for toxic in self.shaper.active(toxics, self.kind, DOWNSTREAM):
            if toxic.type == "reset_peer" or (toxic.type == "timeout" and toxic.attr("timeout") > 0):
                wanted[toxic.name] = toxic.attr("timeout") / 1000
        for name in set(self._timers) - set(wanted):
            self._timers.pop(name).cancel()
        loop = asyncio.get_running_loop()
        for name, delay in wanted.items():
            if name not in self._timers:
                self._timers[name] = loop.call_later(delay, self.abort, f"toxic {name}")

    def close(self) -> None:
        """The connection ended: cancel its timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
