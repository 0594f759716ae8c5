"""Connections and request bodies within bounds, on the HTTP and the control listener alike.

Idle sockets and request heads whose body never comes each hold a file descriptor; enough of
them (about 20,000 here) fill the process's table, and then every new connection to every
listener fails. Three bounds keep descriptors for the clients that use them:

- a connection cap (:class:`ConnectionCap`), shared by the listeners, below the process's
  descriptor limit: a connection accepted at the cap sheds the oldest idle connection (one
  with no request in progress: a silent socket, a slow request head, a spent keep-alive);
  when none is idle the newcomer gets a 503 and is closed;
- a deadline on request bodies (:meth:`ConnectionCap.middleware`, one timer per request with
  a body): a body not complete within ``body_timeout_s`` of its head is answered 408 and the
  connection closed;
- the header and idle timeouts, which aiohttp's ``keepalive_timeout`` enforces (see
  :meth:`servers.runner.Server.start_http`), on the control listener too.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import resource
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiohttp import web

from rtplay.compat.aiohttp import FactoryTCPSite, ProtocolFactory
from rtplay.runtime.memory import oversized

log = logging.getLogger(__name__)

#: Descriptors kept free below the process's soft limit: the QUIC socket, WebRTC peers' UDP
#: sockets (two per peer, at most 32 peers), log files, a co-hosted session's own sockets and
#: the descriptor accept() itself needs before a shed connection gives its own back.
FD_RESERVE = 256

#: Connections the kernel may hold accepted but not yet taken by the server (listen(2)'s
#: backlog; Linux clamps it to ``net.core.somaxconn``, 4096 by default since 5.4). aiohttp's
#: 128 overflowed under a crowd's connect storm: each SYN dropped at a full queue is sent again
#: 1 s, then 3 s later, past the client's handshake timeout, and thousands of clients stayed
#: "connecting" while the server sat idle between bursts.
LISTEN_BACKLOG = 8192

#: The smallest cap: a tiny ``ulimit -n`` still leaves room for a playground's clients.
MIN_CONNECTIONS = 64

#: How long a request body may take after its head (10 s, as the header timeout): a form or
#: an SDP offer is a few KiB, sent at once; a head whose body never arrives is an attack.
REQUEST_BODY_TIMEOUT_S = 10.0

_REFUSAL = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\nRetry-After: 1\r\n\r\n"

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def default_cap() -> int:
    """The connection cap for this process: its soft descriptor limit less :data:`FD_RESERVE`."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(MIN_CONNECTIONS, soft - FD_RESERVE) if soft != resource.RLIM_INFINITY else 1 << 20


class _Refused(asyncio.Protocol):
    """A connection over the cap with nothing idle to shed: 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        tcp = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        tcp.write(_REFUSAL)
        tcp.close()


class ConnectionCap:
    """At most ``limit`` connections over every listener it is attached to; oldest idle shed first."""

    def __init__(self, limit: int, body_timeout_s: float = REQUEST_BODY_TIMEOUT_S, clock: Callable[[], float] | None = None) -> None:
        self.limit = limit
        self.body_timeout_s = body_timeout_s
        self._clock = clock
        self._servers: list[web.Server] = []
        self._opened: dict[Any, float] = {}
        """When each connection was accepted (its order among the idle); pruned as they go."""
        self._busy: dict[Any, int] = {}
        """Connections with a request in progress (an SSE stream, a held long-poll…), by count."""
        self._shedding: set[Any] = set()
        """Connections closed by the cap but not yet gone from their server's list."""
        self.shed = 0
        """Idle connections closed to make room so far."""
        self.refused = 0
        """Connections refused (503) because nothing was idle."""
        self.body_timeouts = 0
        """Requests answered 408 because their body did not come in time."""

    def site(self, runner: web.BaseRunner, host: str, port: int) -> FactoryTCPSite:
        """A TCP site of ``runner`` whose connections count against this cap."""
        return FactoryTCPSite(runner, host, port, self._factory, LISTEN_BACKLOG)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _factory(self, server: web.Server) -> ProtocolFactory:
        if server not in self._servers:
            self._servers.append(server)

        def make() -> asyncio.BaseProtocol:
            if not self.admit():
                return _Refused()
            protocol = server()
            self._opened[protocol] = self._now()
            if len(self._opened) > 2 * self.limit:  # amortized: drop the ones long gone
                self._prune(self._current())
            return protocol

        return make

    def forget(self, server: web.Server) -> None:
        """Stop counting a stopped listener's connections."""
        if server in self._servers:
            self._servers.remove(server)

    def _current(self) -> set[Any]:
        return {h for s in self._servers for h in s.connections}

    def prune(self) -> None:
        """Forget connections that have closed. Their handlers (and all they reference) stay
        in memory while this cap remembers them: after 10,000 subscribers left, the 10,000
        handlers kept ~40 MB until enough new connections came to prune on accept."""
        self._prune(self._current())

    def _prune(self, current: set[Any]) -> None:
        self._shedding &= current
        self._opened = {h: t for h, t in self._opened.items() if h in current}

    def live(self) -> int:
        """Connections open now (those being shed not counted)."""
        current = self._current()
        self._prune(current)
        return len(current) - len(self._shedding)

    def busy(self) -> int:
        """Connections with a request in progress now."""
        return len(self._busy)

    def admit(self) -> bool:
        """Room for one more connection? Sheds the oldest idle ones to make it; False if none is idle."""
        if sum(len(s.connections) for s in self._servers) < self.limit:  # the usual case, cheaply
            return True
        excess = self.live() + 1 - self.limit
        if excess <= 0:
            return True
        idle = [h for s in self._servers for h in s.connections if h not in self._busy and h not in self._shedding]
        for handler in heapq.nsmallest(excess, idle, key=lambda h: self._opened.get(h, 0.0)):
            self._shedding.add(handler)
            handler.force_close()
            self.shed += 1
            excess -= 1
        if excess > 0:
            self.refused += 1
            log.warning("connection refused: %d connections open, none idle (cap %d)", self.live(), self.limit)
            return False
        log.info("shed idle connections to stay under the cap of %d", self.limit)
        return True

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Mark the connection busy while its request runs, and give its body a deadline."""
        protocol = request.protocol
        self._busy[protocol] = self._busy.get(protocol, 0) + 1
        deadline = None
        answered: list[bool] = []
        if request.body_exists:
            loop = asyncio.get_running_loop()
            deadline = loop.call_later(self.body_timeout_s, self._body_late, request, answered)
        try:
            return await handler(request)
        finally:
            answered.append(True)
            if deadline is not None and request.content.is_eof():
                deadline.cancel()  # else it still ends a body answered unread that never comes
            if (count := self._busy.pop(protocol, 1) - 1) > 0:
                self._busy[protocol] = count
            elif oversized(self._busy):  # a burst of requests has ended: drop its table
                self._busy = dict(self._busy)

    def _body_late(self, request: web.Request, answered: list[bool]) -> None:
        """The body deadline passed: unless the body is all in, answer 408 and close.

        While the handler still waits for the body nothing of its answer was sent, so the 408
        goes out; closing the transport ends that wait with a connection error, logged as one
        line (:class:`servers.core.guard.OneLineLog`). A request answered without its body
        (a refusal) is only closed: aiohttp would otherwise wait for the rest of it.
        """
        transport = request.transport
        if request.content.is_eof() or transport is None or transport.is_closing():
            return
        self.body_timeouts += 1
        log.info("%s %s: request body not received within %g s; closing", request.method, request.path, self.body_timeout_s)
        if not answered:
            transport.write(_TIMEOUT)
        transport.close()
