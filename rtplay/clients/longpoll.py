"""Long-polling: the server holds each request until there is news; re-poll at once.

The requests go out over :class:`~rtplay.clients.keepalive.KeepAlive`, one kept-alive
connection with a request path lean enough for a crowd of thousands (see that module).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rtplay.clients.base import Emit
from rtplay.clients.core import ReconnectingClient
from rtplay.clients.http_common import (
    CONNECT_TIMEOUT_S,
    HTTP_ERRORS,
    StatusError,
    apply_batch,
    describe_request_error,
)
from rtplay.clients.keepalive import KeepAlive
from rtplay.model.events import RequestResent

#: What a resend means, in the pane's log.
RESENT = "connection reset before an answer; the HTTP client sent the request again (as browsers do)"

#: How long the server may hold one request before answering 204.
DEFAULT_HOLD_S = 25.0

#: A request the server has held this long was accepted and is being held for news: the
#: client counts as open. On loopback a refusal or an error status comes back within
#: milliseconds, so a held request is not mistaken for a failing one; without this, a paused
#: hub (rate 0) would leave the pane "connecting" for the whole hold.
HELD_OPEN_S = 1.0


class LongPollClient(ReconnectingClient):
    """Re-polls ``/longpoll?since=N`` immediately after every answer; waits after errors."""

    name = "longpoll"
    #: The classic long-poll client (e.g. CometD's and jQuery-era loops) waits a fixed 10 s
    #: after a failed request before trying again.
    default_policy = "fixed:10"
    errors = HTTP_ERRORS
    #: A held request is answered with messages (or at the hold's end): it is open, unseen.
    opens_before_data = False

    def __init__(self, base_url: str, emit: Emit | None = None, *, hold: float = DEFAULT_HOLD_S, **kw: Any) -> None:
        super().__init__(base_url, emit, **kw)
        self.hold = hold
        self._http: KeepAlive | None = None
        self.resent = 0
        """Requests the HTTP client sent again by itself after their connection was reset
        before any answer (a ``drop`` on a held request): the transport was hit, unseen."""

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        # The read timeout leaves the server time to answer 204 itself.
        self._http = KeepAlive(
            self.base_url, read_timeout=self.hold + 5.0, connect_timeout=CONNECT_TIMEOUT_S, on_resend=self._resent
        )
        try:
            yield
        finally:
            self._http.close()
            self._http = None

    def explain(self, exc: BaseException) -> tuple[str, float | None]:
        return describe_request_error(exc), None

    async def attempt(self) -> str:
        """Held requests, one after another, until one fails (which raises)."""
        while True:
            await self.poll_once()

    async def poll_once(self) -> None:
        """One held request; returns on 200 or 204, raises on anything else."""
        assert self._http is not None, "run() opens the connection"
        self.check_online()
        # Until it is open, a request held long enough opens the client (HELD_OPEN_S).
        held = None if self.conn.connected else asyncio.get_running_loop().call_later(HELD_OPEN_S, self._held_open)
        try:
            answer = await self._http.get(f"/longpoll?since={self.cursor}&timeout={float(self.hold)!r}")
        finally:
            if held is not None:
                held.cancel()
        if self.is_offline():
            await self.wait_online()  # offline: the answer sits unread until the network is back
        received_ms = self.wall_ms()
        if answer.status not in (200, 204):
            raise StatusError(answer)
        self.add_wire_bytes(answer.head_bytes + len(answer.body))
        self._held_open()
        if answer.status == 200:
            apply_batch(self, answer.body, received_ms)

    def _resent(self) -> None:
        self.resent += 1
        self._record("resent", self.clock())
        self._emit(RequestResent(self.name, self.clock(), RESENT))

    def report(self, published: int, replay_from: int = 1, final: bool = False) -> dict[str, object]:
        """The client's entry, with :attr:`resent`."""
        return super().report(published, replay_from, final) | {"resent": self.resent}

    def _held_open(self) -> None:
        """The server accepted the request (it answered, or has held it): the client is open."""
        if not self.conn.connected:
            self._connected(f"since={self.cursor}")
