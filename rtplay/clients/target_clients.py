"""rtplay's clients pointed at a user's endpoints (target mode).

Each is the transport's own client — same reconnect core, same retry policies, same
EventSource processing model — with three differences: it connects to the URL the user gave
(the resume template filled with its cursor), it reads messages through the user's stated
identity (:class:`~rtplay.clients.target.TargetTap`) instead of rtplay's envelope, and it
sends the target nothing rtplay's server would understand and the target would not (the
WebSocket client keeps alive with protocol pings, not ``{"ping"}`` messages).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from rtplay.clients.base import Client, Emit
from rtplay.clients.http_common import (
    HTTP_ERRORS,
    StatusError,
    describe_request_error,
    header_bytes,
    make_aiohttp_session,
)
from rtplay.clients.longpoll import HELD_OPEN_S, LongPollClient
from rtplay.clients.poll import PollClient
from rtplay.clients.sse import SSEClient
from rtplay.clients.target import MAX_BODY_BYTES, TargetTap
from rtplay.clients.ws import CLOSE_TIMEOUT_S, FRAME_HEADER_BYTES, OPEN_TIMEOUT_S, WebSocketClient
from rtplay.compat.websockets import abort
from rtplay.model.eventsource import MessageEvent, SSEProtocolError
from rtplay.model.identity import MAX_MESSAGE_BYTES
from rtplay.protocol.envelope import ProtocolError

#: RFC 6455 §7.4.1: 1009 "message too big" (what websockets closes with past ``max_size``).
CLOSE_TOO_BIG = 1009


class TooLarge(ProtocolError):
    """A response body beyond :data:`~rtplay.clients.target.MAX_BODY_BYTES`."""


def target_report(client: Client, tap: TargetTap) -> dict[str, object]:
    """A target client's report entry: its connection figures and its tap's."""
    now = client.clock()
    entry: dict[str, object] = {
        "state": client.state.value,
        "connects": client.conn.connects,
        "reconnects": client.conn.reconnects,
        "downtime_s": round(client.conn.downtime(now), 3),
    }
    if client.state_detail and client.state.value == "failed":
        entry["failed_reason"] = client.state_detail
    return entry | tap.report(now)


class Tapped(Client):
    """What every target client shares: its tap is its cursor, its report and its end.

    Listed first among a target client's bases, so these override the transport client's.
    """

    tap: TargetTap

    @property
    def cursor(self) -> int:
        return self.tap.stats.cursor or 0

    def _disconnected(self, reason: str) -> None:
        self.tap.ended(reason)
        super()._disconnected(reason)

    def report(self, published: int = 0, replay_from: int = 1, final: bool = False) -> dict[str, object]:
        return target_report(self, self.tap)


class TargetSSEClient(Tapped, SSEClient):
    """An EventSource on the target's stream; every dispatched event is one message."""

    def __init__(self, tap: TargetTap, emit: Emit | None = None, **kw: Any) -> None:
        super().__init__(tap.target_url, emit, **kw)
        self.tap = tap

    def stream_url(self) -> str:
        return self.tap.url()

    async def attempt(self) -> str:
        return await self.tap.cuttable(super().attempt())

    def _connected(self, detail: str = "") -> None:
        asked = [f"Last-Event-ID: {self.parser.last_event_id}"] if self.parser.last_event_id else []
        asked += [query] if (query := self.tap.resume_asked()) else []
        self.tap.connected(", ".join(asked) or None)
        super()._connected(detail)

    def handle(self, event: MessageEvent, received_ms: float) -> None:
        self.tap.take(event.data, event.last_event_id or None, received_ms)

    def explain(self, exc: BaseException) -> tuple[str, float | None]:
        if isinstance(exc, SSEProtocolError):  # a line or an event beyond the parser's bounds
            self.tap.oversized()
            return f"oversized event: {exc}", None
        return super().explain(exc)

    def add_wire_bytes(self, n: int, channel: str = "main") -> None:
        self.tap.stats.wire_bytes += n

    def _failed(self, reason: str) -> None:
        self.tap.ended(reason)
        super()._failed(reason)


class TargetWebSocketClient(Tapped, WebSocketClient):
    """A WebSocket on the target's URL; every text or binary frame is one message."""

    def __init__(self, tap: TargetTap, emit: Emit | None = None, **kw: Any) -> None:
        super().__init__(tap.target_url, emit, **kw)
        self.tap = tap

    @property
    def url(self) -> str:
        return self.tap.url()

    def explain(self, exc: BaseException) -> tuple[str, float | None]:
        if isinstance(exc, ConnectionClosed) and exc.sent is not None and exc.sent.code == CLOSE_TOO_BIG:
            self.tap.oversized()
            return f"message larger than {MAX_MESSAGE_BYTES} bytes: closed 1009", None
        return super().explain(exc)

    async def attempt(self) -> str:
        return await self.tap.cuttable(self._attempt())

    async def _attempt(self) -> str:
        self.check_online()
        asked = self.tap.resume_asked()
        # The target speaks its own protocol: keep alive with RFC 6455 pings, which every
        # server answers, not rtplay's {"ping"} messages.
        async with connect(
            self.url, ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
            open_timeout=OPEN_TIMEOUT_S, close_timeout=CLOSE_TIMEOUT_S, max_size=MAX_MESSAGE_BYTES, proxy=None,
        ) as ws:
            self.tap.on_cut = lambda: abort(ws)
            self.tap.connected(asked)
            self._connected(asked or "no resume cursor")
            async for frame in ws:
                await self.wait_online()  # offline: the connection goes silent
                self.add_wire_bytes(len(frame) + FRAME_HEADER_BYTES)
                self.tap.take(frame, None, self.wall_ms())
        return "server closed the connection"

    def add_wire_bytes(self, n: int, channel: str = "main") -> None:
        self.tap.stats.wire_bytes += n


async def read_bounded(chunks: AsyncIterable[bytes]) -> bytes:
    """A body from its chunks, at most MAX_BODY_BYTES (TooLarge beyond)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise TooLarge(f"response larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


class TargetLongPollClient(Tapped, LongPollClient):
    """Re-requests the target's URL (with its resume template) after every answer.

    Through aiohttp, not the long-poll's lean request path: a target may speak any HTTP
    (chunked or compressed answers, redirects) that rtplay's own server does not."""

    def __init__(self, tap: TargetTap, emit: Emit | None = None, **kw: Any) -> None:
        super().__init__(tap.target_url, emit, **kw)
        self.tap = tap
        self._session: aiohttp.ClientSession | None = None

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        async with make_aiohttp_session(read_timeout=self.hold + 5.0) as self._session:
            yield

    async def attempt(self) -> str:
        return await self.tap.cuttable(super().attempt())

    async def poll_once(self) -> None:
        http = self._session
        assert http is not None, "run() opens the HTTP session"
        self.check_online()
        held = asyncio.get_running_loop().call_later(HELD_OPEN_S, self._held_open)
        try:
            async with http.get(self.tap.url()) as response:
                body = await self._read(response)
        finally:
            held.cancel()
        await self.wait_online()
        received_ms = self.wall_ms()
        if response.status not in (200, 204):
            raise StatusError(response)
        self.tap.stats.wire_bytes += header_bytes(response) + len(body)
        self._held_open()
        if response.status == 200:
            self.tap.take_batch(body, received_ms)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        try:
            return await read_bounded(response.content.iter_chunked(64 * 1024))
        except TooLarge:
            self.tap.oversized()
            raise

    def _connected(self, detail: str = "") -> None:
        self.tap.connected(self.tap.resume_asked())
        super()._connected(self.tap.resume_asked() or "no resume cursor")


class TargetPollClient(Tapped, PollClient):
    """Requests the target's URL (with its resume template) every interval."""

    def __init__(self, tap: TargetTap, emit: Emit | None = None, **kw: Any) -> None:
        super().__init__(tap.target_url, emit, **kw)
        self.tap = tap

    async def poll_once(self, http: httpx.AsyncClient) -> None:
        try:
            self.check_online()
            async with http.stream("GET", self.tap.url()) as response:
                try:
                    body = await read_bounded(response.aiter_bytes())
                except TooLarge:
                    self.tap.oversized()
                    raise
            received_ms = self.wall_ms()
            if response.status_code != 200:
                raise StatusError(response)
            self.tap.stats.wire_bytes += header_bytes(response) + len(body)
            if not self.conn.connected:
                self.tap.connected(self.tap.resume_asked())
                self._connected(self.tap.resume_asked() or "no resume cursor")
            self.tap.take_batch(body, received_ms)
        except HTTP_ERRORS as exc:
            reason = describe_request_error(exc)
            if self.conn.connected or self.conn.connects == 0:
                self._disconnected(reason)  # ends the tap's attempt too
            else:
                self.tap.ended(reason)
            self._retry_in(self.interval, f"next poll in {self.interval:g}s (fixed interval)")


TargetFactory = Callable[..., Client]

TARGET_CLIENTS: dict[str, TargetFactory] = {
    "poll": TargetPollClient,
    "longpoll": TargetLongPollClient,
    "sse": TargetSSEClient,
    "ws": TargetWebSocketClient,
}
"""The client class of each target transport; each takes ``(tap, emit, **options)``."""
