"""The engine: starts the server and the clients, applies faults, emits events, reports.

One :class:`Session` serves both the TUI and headless mode, so tests exercise what users run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rtplay.clients import CLIENTS, Endpoints
from rtplay.clients.base import Client
from rtplay.events import Event, Failed, State
from rtplay.faultctl import FaultController
from rtplay.protocol.faults import TRANSPORTS
from servers.runner import Server, ServerConfig

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]

#: How long :meth:`Session.settle` waits by default for clients to catch up at the end.
DEFAULT_SETTLE_S = 5.0


def available_transports() -> list[str]:
    """The transports this installation has a client for, in display order."""
    return [name for name in TRANSPORTS if name in CLIENTS]


@dataclass
class SessionConfig:
    transports: list[str] = field(default_factory=available_transports)
    server: ServerConfig = field(default_factory=ServerConfig)
    client_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per-transport keyword arguments for the client (e.g. ``{"poll": {"interval": 0.5}}``)."""
    emit_messages: bool = False
    """Emit a :class:`MessageReceived` per envelope (tests, debugging); off for speed."""

    def __post_init__(self) -> None:
        unknown = [t for t in self.transports if t not in CLIENTS]
        if unknown:
            known = ", ".join(available_transports())
            raise ValueError(f"unknown transport(s) {', '.join(unknown)}: expected some of {known}")
        if not self.transports:
            raise ValueError("no transports chosen")


class Session:
    """Server + one client per chosen transport, driven as one unit."""

    def __init__(self, config: SessionConfig | None = None) -> None:
        self.config = config or SessionConfig()
        self.server = Server(self.config.server)
        self.clients: dict[str, Client] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._listeners: list[Listener] = []
        self.started_at: float | None = None
        self.publishing_stopped_at: float | None = None
        self.clock: Callable[[], float] = time.monotonic
        self.faults = FaultController(self)
        self.subscribe(self.faults.on_event)

    # --- events --------------------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` synchronously with every event (keep it quick)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def emit(self, event: Event) -> None:
        if isinstance(event, Failed) and event.transport in self.clients:
            self.clients[event.transport].subscribed_until = self.published
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not take a client down
                log.exception("event listener failed on %r", event)

    # --- lifecycle -------------------------------------------------------------------------

    def endpoints(self) -> Endpoints:
        host = self.server.config.host
        return Endpoints(
            http_url=self.server.http_url,
            quic_host="127.0.0.1" if host in ("", "0.0.0.0", "::") else host,
            quic_port=self.server.quic_port,
            cert_der=self.server.cert.der,
        )

    async def start(self) -> None:
        """Start the server, then every client, then publishing."""
        await self.server.start(publish=False)
        endpoints = self.endpoints()
        for name in self.config.transports:
            options = dict(self.config.client_options.get(name, {}))
            if self.config.emit_messages:
                options["emit_messages"] = True
            client = CLIENTS[name](endpoints, self.emit, options)
            client.arrival_hook = self.faults.arrival_hook(name)
            client.is_offline = lambda name=name: self.server.faults.offline(name)  # type: ignore[misc]
            self.clients[name] = client
            self._tasks[name] = asyncio.create_task(self._run_client(client), name=f"rtplay-{name}")
        self.server.publisher.start()
        self.started_at = self.clock()
        self.faults.start()

    async def _run_client(self, client: Client) -> None:
        try:
            await client.run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a client bug ends that client, never the session
            log.exception("%s client crashed", client.name)
            client._failed(f"client error: {type(exc).__name__}: {exc}")

    async def stop(self) -> None:
        """Stop every client and the server; safe to call twice."""
        await self.faults.stop()
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for client in self.clients.values():
            client.stopped()
        await self.server.stop()

    async def __aenter__(self) -> Session:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- control ---------------------------------------------------------------------------

    @property
    def published(self) -> int:
        return self.server.hub.last_seq

    def set_rate(self, rate: float) -> None:
        self.server.set_rate(rate)

    def restart_client(self, name: str) -> bool:
        """Start ``name``'s client again if it failed for good (like opening a new EventSource).

        Its accounting carries on; an SSE client keeps its last event ID, so it resumes.
        Returns False when the client is still running.
        """
        task = self._tasks.get(name)
        if task is not None and not task.done():
            return False
        client = self.clients[name]
        client.subscribed_until = None
        self._tasks[name] = asyncio.create_task(self._run_client(client), name=f"rtplay-{name}")
        return True

    def drop(self, transport: str | None = None) -> int:
        """Abruptly close every live connection of ``transport`` (all when None)."""
        return self.server.drop(transport)

    async def settle(self, timeout: float = DEFAULT_SETTLE_S) -> bool:
        """Stop publishing and wait until every live client has everything; False on timeout."""
        self.server.set_rate(0)
        if self.publishing_stopped_at is None:
            self.publishing_stopped_at = self.clock()
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            if all(self.caught_up(c) for c in self.clients.values()):
                return True
            await asyncio.sleep(0.02)
        return False

    def caught_up(self, client: Client) -> bool:
        """True when ``client`` has the last published seq on its resumable channel (or failed).

        Only the first channel counts: an unreliable channel whose last message was lost
        never reaches the end, and waiting for it would only stall the report.
        """
        if client.state is State.FAILED:
            return True
        return client.stats[client.channels[0]].tracker.highest >= self.published

    # --- reporting -------------------------------------------------------------------------

    def duration(self) -> float:
        """Seconds of publishing so far (up to :meth:`settle`, which stops publishing)."""
        if self.started_at is None:
            return 0.0
        return (self.publishing_stopped_at or self.clock()) - self.started_at

    def report(self) -> dict[str, Any]:
        """The JSON report (field names are a contract other tools read)."""
        published = self.published
        return {
            "published": published,
            "duration_s": round(self.duration(), 3),
            "transports": {name: c.report(published) for name, c in self.clients.items()},
            "faults": self.faults.report(),
        }
