"""One fault proxy: a listener in front of an upstream, its toxics and what its wire showed.

The Python API (scripts, tests, target mode)::

    proxy = FaultProxy("app", "http://127.0.0.1:3000")   # listens on 127.0.0.1:0 by default
    await proxy.start()                        # or: async with FaultProxy(...) as proxy:
    proxy.url                                  # "http://127.0.0.1:PORT": point clients here
    proxy.add_fault("delay=300ms:sse")         # rtplay's --fault grammar (rtplay.proxy.spec)
    proxy.toxics.add(parse_toxic({...}))       # or Toxiproxy's toxic JSON
    proxy.toxics.remove(name); proxy.reset()   # clear one, or everything
    proxy.wire_json()                          # per route, per client, per connection
    await proxy.stop()
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from rtplay.proxy.faults import Change, ProxyToxics
from rtplay.proxy.links import RelayContext
from rtplay.proxy.pipe import ToxicSource
from rtplay.proxy.relay import relay_http
from rtplay.proxy.spec import parse_proxy_fault
from rtplay.proxy.toxics import RTPLAY_TYPES, Toxic, check_name, parse_toxic
from rtplay.proxy.wire import WireView
from rtplay.proxy.wsrelay import relay_ws
from rtplay.runtime.serverlog import server_logger

log = logging.getLogger(__name__)

#: A client must send a complete request head this soon after connecting, and an idle
#: keep-alive connection is closed after as long (slowloris): the built-in server's default.
HEADER_TIMEOUT_S = 10.0

#: Upstream connections open at once: streams hold one each. Past it new requests wait for a
#: free one (aiohttp's pool), so a flood of clients cannot exhaust the process's descriptors.
MAX_UPSTREAM_CONNECTIONS = 4096

#: Connections waiting to be accepted: a crowd of clients reconnecting at once (a thousand
#: after a drop) must not overflow the kernel's default queue of 128 into SYN retries (1 s+).
LISTEN_BACKLOG = 1024

#: Time allowed to connect to the upstream before the client gets 502.
UPSTREAM_CONNECT_TIMEOUT_S = 10.0

#: aiohttp's limits on a request head (bytes per line and per header field): its defaults,
#: named here because the proxy relies on them against a client that never ends its headers.
MAX_LINE_SIZE = 8190
MAX_FIELD_SIZE = 8190


class ProxyConfigError(ValueError):
    """A bad upstream or listen address."""


def parse_upstream(text: str) -> URL:
    """``host:port`` (Toxiproxy's form) or an ``http(s)://`` URL, as a base URL."""
    url = URL(text if "://" in text else f"http://{text}")
    if url.scheme not in ("http", "https") or not url.host:
        raise ProxyConfigError(f"upstream must be host:port or an http(s):// URL, got {text!r}")
    return url


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; ``:PORT`` for 127.0.0.1)."""
    parts = urlsplit(f"//{text}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        raise ProxyConfigError(f"listen must be HOST:PORT, got {text!r}")
    return parts.hostname or "127.0.0.1", port


class FaultProxy:
    """A protocol-aware reverse proxy with toxics (see the module docstring)."""

    def __init__(
        self, name: str, upstream: str, listen: str = "127.0.0.1:0", *, enabled: bool = True,
        seed: int | None = None, clock: Callable[[], float] = time.monotonic,
        header_timeout_s: float = HEADER_TIMEOUT_S,
    ) -> None:
        self.name = check_name(name, "proxy name")
        self.upstream_text = upstream
        self.upstream = parse_upstream(upstream)
        self.host, self.port = parse_listen(listen)
        self.enabled = enabled
        self.clock = clock
        self.header_timeout_s = header_timeout_s
        self.rng = random.Random(seed)
        self.wire = WireView()
        self.toxics = ProxyToxics(self._toxic_changed)
        self._source: ToxicSource | None = None
        self._ctx: RelayContext | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener_lock = asyncio.Lock()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the upstream pool and, if enabled, the listener."""
        self._source = ToxicSource()
        self._source.toxics = lambda: self.toxics
        connector = aiohttp.TCPConnector(limit=MAX_UPSTREAM_CONNECTIONS)
        session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, connect=UPSTREAM_CONNECT_TIMEOUT_S),
        )
        self._ctx = RelayContext(self.upstream, session, self._source, self.wire, self.clock, self.rng)
        try:
            if self.enabled:
                await self._listen()
        except BaseException:
            await self.stop()
            raise
        log.info("proxy %s: %s -> %s", self.name, self.listen, self.upstream)

    async def __aenter__(self) -> FaultProxy:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Close the listener and every connection; cancel the proxy's timers."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ctx is not None:
            for link in list(self._ctx.links):
                link.abort("proxy stopped")
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = self._site = None
        if self._ctx is not None:
            await self._ctx.session.close()
            self._ctx = None

    async def _listen(self) -> None:
        """A fresh listener (a runner of its own, so that disabling closes every connection,
        idle keep-alives included, as Toxiproxy's disable does)."""
        app = web.Application(handler_args={"max_line_size": MAX_LINE_SIZE, "max_field_size": MAX_FIELD_SIZE})
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that goes away ends its relay at once (and its close
        # time is exact for the reconnect view), not at the next write.
        self._runner = web.AppRunner(
            app, access_log=None, logger=server_logger(), keepalive_timeout=self.header_timeout_s,
            shutdown_timeout=1.0, handler_cancellation=True,
        )
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True, backlog=LISTEN_BACKLOG)
        try:
            await self._site.start()
        except BaseException:
            await self._runner.cleanup()
            self._runner = self._site = None
            raise
        self.port = self._runner.addresses[-1][1]

    async def enable(self) -> None:
        """Listen again (Toxiproxy: ``"enabled": true``)."""
        self.enabled = True
        async with self._listener_lock:
            if self._runner is None and self._ctx is not None and self.enabled:
                await self._listen()

    async def disable(self) -> None:
        """Stop listening and drop every connection (Toxiproxy: ``"enabled": false``)."""
        self.enabled = False
        self._abort("all", "proxy disabled")
        async with self._listener_lock:  # an enable right after waits for the port to be free
            runner, self._runner, self._site = self._runner, None, None
            if runner is not None:
                await runner.cleanup()

    @property
    def listen(self) -> str:
        """``HOST:PORT`` the proxy listens on (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """Where clients connect: ``http://HOST:PORT``."""
        return f"http://{self.listen}"

    # --- faults ----------------------------------------------------------------------------

    def add_fault(self, spec: str) -> Toxic:
        """Add a fault in rtplay's ``--fault`` grammar for proxies (:mod:`rtplay.proxy.spec`);
        its timing (``@START-END``) is the caller's to follow. Returns the toxic (remove it by name)."""
        return self.toxics.add(parse_proxy_fault(spec).toxic)

    def add_toxic(self, name: str, type_: str, attributes: dict[str, float], kind: str = "all",
                  stream: str = "downstream", toxicity: float = 1.0) -> Toxic:
        """Add a toxic by its parts (validated as the API would)."""
        return self.toxics.add(parse_toxic({
            "name": name, "type": type_, "stream": stream, "toxicity": toxicity,
            "attributes": {**attributes, **({"kind": kind} if type_ in RTPLAY_TYPES else {})},
        }))

    def reset(self) -> None:
        """Toxiproxy's reset: every toxic removed, the proxy enabled."""
        self.toxics.clear()
        if not self.enabled:
            self._spawn(self.enable())

    def _toxic_changed(self, toxic: Toxic, change: Change) -> None:
        if change is Change.ADDED and toxic.type == "drop":
            self._abort(toxic.kind, f"drop fault {toxic.name}")
        if toxic.type == "outage":
            self._outage(toxic, change)
        if self._source is not None:
            self._source.notify()
        if self._ctx is not None:
            toxics = list(self.toxics)
            for link in list(self._ctx.links):
                link.refresh(toxics)

    def _outage(self, toxic: Toxic, change: Change) -> None:
        timer = self._timers.pop(toxic.name, None)
        if timer is not None:
            timer.cancel()
        if change is Change.REMOVED:
            self._spawn(self.enable())
            return
        self._spawn(self.disable())
        if (seconds := toxic.attr("seconds")) > 0:
            loop = asyncio.get_running_loop()
            self._timers[toxic.name] = loop.call_later(seconds, self._outage_over, toxic.name)

    def _outage_over(self, name: str) -> None:
        self._timers.pop(name, None)
        try:
            self.toxics.remove(name)
        except LookupError:
            pass  # removed by hand meanwhile

    def _abort(self, kind: str, why: str) -> None:
        if self._ctx is None:
            return
        for link in list(self._ctx.links):
            if kind in ("all", link.kind):
                link.abort(why)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- relaying and reporting ------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._ctx is not None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await relay_ws(self._ctx, request)
        return await relay_http(self._ctx, request)

    def to_json(self) -> dict[str, Any]:
        """Toxiproxy's proxy shape."""
        return {
            "name": self.name, "listen": self.listen, "upstream": self.upstream_text,
            "enabled": self.enabled, "toxics": self.toxics.to_json(),
        }

    def wire_json(self) -> dict[str, Any]:
        """What the wire showed: routes, clients and their reconnect decisions, connections."""
        return self.wire.to_json(self.clock())
