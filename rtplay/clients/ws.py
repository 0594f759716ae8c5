"""WebSocket: one socket, app-level heartbeat, exponential backoff with jitter, ``since`` resume."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from rtplay.clients.base import Emit, is_heartbeat
from rtplay.clients.core import ATTEMPT_ERRORS, HeartbeatTimeout, ReconnectingClient
from rtplay.clients.ws_wire import WsWire
from rtplay.model.retry import DEFAULT_PING_INTERVAL_S, DEFAULT_PING_TIMEOUT_S
from rtplay.protocol import messages
from rtplay.protocol.envelope import ProtocolError, decode_json, parse_envelope
from rtplay.protocol.messages import PONG, number_of

#: How long a closing handshake may take before the TCP connection is just dropped.
CLOSE_TIMEOUT_S = 1.0

#: Opening handshake (TCP + HTTP upgrade). Loopback answers in milliseconds; a crowd of a
#: thousand reconnecting at once can queue for a second or two at the server. The default of
#: the ``open_timeout`` knob (crowd clients take longer, see rtplay.engine.crowd_slice).
OPEN_TIMEOUT_S = 5.0

#: Largest server→client frame accepted: an envelope is ~100 bytes.
MAX_FRAME_BYTES = 64 * 1024

#: Frame overhead of a server→client text frame under 64 KiB (RFC 6455 §5.2: 2-4 bytes).
FRAME_HEADER_BYTES = 4


class WebSocketClient(ReconnectingClient):
    """Reads envelopes from ``/ws?since=N``; measures round trips with ``{"ping"}``."""

    name = "ws"
    errors = (*ATTEMPT_ERRORS, ConnectionClosed, InvalidHandshake)

    def __init__(
        self,
        base_url: str,
        emit: Emit | None = None,
        *,
        ping_interval: float = DEFAULT_PING_INTERVAL_S,
        ping_timeout: float = DEFAULT_PING_TIMEOUT_S,
        open_timeout: float = OPEN_TIMEOUT_S,
        **kw: Any,
    ) -> None:
        super().__init__(base_url, emit, **kw)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.open_timeout = open_timeout
        """How long the opening handshake (TCP + HTTP upgrade) may take."""
        self.rtt_ms: float | None = None
        """The last measured round-trip time."""

    @property
    def url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + f"/ws?since={self.cursor}"

    def explain(self, exc: BaseException) -> tuple[str, float | None]:
        if isinstance(exc, ConnectionClosed):
            return closed_reason(exc), None
        if isinstance(exc, InvalidStatus):
            return f"handshake refused: HTTP {exc.response.status_code}", None
        return super().explain(exc)

    async def attempt(self) -> str:
        self.check_online()
        async with asyncio.timeout(self.open_timeout):
            ws = await WsWire.open(self.url, max_size=MAX_FRAME_BYTES, close_timeout=CLOSE_TIMEOUT_S)
        try:
            self._connected(f"since={self.cursor}")
            try:
                await self.receive(ws)
            except (HeartbeatTimeout, ProtocolError):
                # A dead peer will not answer a closing handshake: don't wait for one.
                ws.abort()
                raise
        finally:
            await ws.close()
        return "connection closed"

    async def receive(self, ws: WsWire) -> None:
        """Frames until the connection ends (ConnectionClosed) or the heartbeat expires."""

        async def ping() -> None:
            # The network is down (offline fault): pings go nowhere, but the heartbeat
            # clock runs on, so a long enough outage is detected as dead.
            if not self.is_offline():
                await ws.send(messages.ping(self.wall_ms()))

        async def step(seconds: float) -> bool:
            if self.is_offline():  # silent until the network is back or the deadline passes
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        await self.network.wait_up(self.name)
                return False
            try:
                # Frames until the heartbeat's next deadline, under one timeout: traffic only
                # ever moves that deadline later, and a timeout per frame was a tenth of the
                # client's CPU. Cancelling recv() is safe (WsWire): no message is lost.
                async with asyncio.timeout(seconds):
                    while not self.is_offline():  # offline: the connection goes silent
                        self.take(await ws.recv())
            except TimeoutError:
                pass
            return False

        await self.heartbeat_loop(ping, step, self.ping_interval, self.ping_timeout)

    def take(self, frame: str | bytes) -> None:
        """One frame from the server: a sign of life, then a pong, a reset or an envelope."""
        received_ms = self.wall_ms()
        self.heard()
        payload = decode_json(frame)
        if not is_heartbeat(payload):
            self.add_wire_bytes(len(frame) + FRAME_HEADER_BYTES)
        self.handle(payload, received_ms)

    def handle(self, payload: object, received_ms: float) -> None:
        if isinstance(payload, dict):
            if (stamp := number_of(payload, PONG)) is not None:
                self.rtt_ms = received_ms - stamp
                return
            if self.handle_reset(payload):
                return
        self.on_envelope(parse_envelope(payload), received_ms)


def closed_reason(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "connection lost (no close frame)"
    reason = f": {exc.rcvd.reason}" if exc.rcvd.reason else ""
    return f"server closed ({exc.rcvd.code}{reason})"
