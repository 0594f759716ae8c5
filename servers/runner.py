"""Start, stop and restart every listener of the built-in server.

The hub, the broadcaster and the fault state live here and outlive the listeners, so an
outage (listeners down, then back) keeps the hub's state, and a crash forgets only the
replay buffer — exactly what a client of a real restarted server would see.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from servers.faults import FaultState
from servers.http import HttpConfig, ServerContext, build_app
from servers.hub import DEFAULT_PAYLOAD_SIZE, DEFAULT_REPLAY_CAPACITY, Hub
from servers.pubsub import DEFAULT_SUBSCRIBER_QUEUE, Broadcaster, Publisher

log = logging.getLogger(__name__)

#: How long a stopping HTTP listener waits for in-flight handlers. Short: everything that
#: is still open is aborted first, and an outage must start promptly.
HTTP_SHUTDOWN_TIMEOUT_S = 0.5

AppHook = Callable[[web.Application], None]


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    """Bind address of every listener. Loopback unless the user asks otherwise."""
    http_port: int = 0
    """TCP port of /poll /longpoll /sse /ws /rtc /control; 0 = any free port."""
    quic_port: int = 0
    """UDP port of the HTTP/3 (WebTransport) listener; 0 = any free port."""
    rate: float = 10.0
    """Messages published per second; 0 = paused."""
    replay_capacity: int = DEFAULT_REPLAY_CAPACITY
    payload_size: int = DEFAULT_PAYLOAD_SIZE
    queue_size: int = DEFAULT_SUBSCRIBER_QUEUE
    http: HttpConfig = field(default_factory=HttpConfig)


class Server:
    """The built-in multi-transport server."""

    def __init__(self, config: ServerConfig | None = None, faults: FaultState | None = None) -> None:
        self.config = config or ServerConfig()
        self.hub = Hub(self.config.replay_capacity, self.config.payload_size)
        self.broadcaster = Broadcaster(self.hub, self.config.queue_size)
        self.publisher = Publisher(self.broadcaster, self.config.rate)
        self.ctx = ServerContext(self.broadcaster, faults or FaultState(), config=self.config.http)
        self.http_port = self.config.http_port
        self._app_hooks: list[AppHook] = []
        self._http: web.AppRunner | None = None
        self.started_at = time.time()

    @property
    def faults(self) -> FaultState:
        return self.ctx.faults

    @property
    def http_url(self) -> str:
        host = f"[{self.config.host}]" if ":" in self.config.host else self.config.host
        return f"http://{host}:{self.http_port}"

    @property
    def http_running(self) -> bool:
        return self._http is not None

    def add_app_hook(self, hook: AppHook) -> None:
        """Let another module add routes to the HTTP app (applied at every (re)start)."""
        self._app_hooks.append(hook)

    async def start(self, publish: bool = True) -> None:
        await self.start_http()
        if publish:
            self.publisher.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        await self.stop_http()

    async def start_http(self) -> None:
        if self._http is not None:
            return
        app = build_app(self.ctx)
        for hook in self._app_hooks:
            hook(app)
        runner = web.AppRunner(app, shutdown_timeout=HTTP_SHUTDOWN_TIMEOUT_S, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.config.host, self.http_port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.http_port = runner.addresses[0][1]
        self._http = runner
        log.info("HTTP listening on %s", self.http_url)

    async def stop_http(self) -> None:
        """Take the HTTP listener down: live connections are aborted, new ones refused."""
        runner, self._http = self._http, None
        if runner is None:
            return
        for transport in ("poll", "longpoll", "sse", "ws"):
            self.ctx.registry.drop(transport)
        await runner.cleanup()
        log.info("HTTP listener stopped")

    def drop(self, transport: str | None = None) -> int:
        """Abruptly close every live connection of ``transport`` (all when None)."""
        return self.ctx.registry.drop(transport)

    def set_rate(self, rate: float) -> None:
        self.publisher.set_rate(rate)

    def app(self) -> web.Application | None:
        return self._http.app if self._http else None
