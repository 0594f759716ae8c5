"""WebSocket: one socket, app-level heartbeat, exponential backoff with jitter, ``since`` resume."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from rtplay.clients.base import OFFLINE_POLL_S, Client, Emit, is_heartbeat
from rtplay.errors import describe_error
from rtplay.protocol.compat.websockets import abort
from rtplay.protocol.envelope import RESET, ProtocolError, decode_json, parse_envelope, reset_first
from rtplay.retry import (
    DEFAULT_PING_INTERVAL_S,
    DEFAULT_PING_TIMEOUT_S,
    Backoff,
    ExponentialBackoff,
    Heartbeat,
)

#: How long a closing handshake may take before the TCP connection is just dropped.
CLOSE_TIMEOUT_S = 1.0

#: Largest server→client frame accepted: an envelope is ~100 bytes.
MAX_FRAME_BYTES = 64 * 1024

#: Frame overhead of a server→client text frame under 64 KiB (RFC 6455 §5.2: 2-4 bytes).
FRAME_HEADER_BYTES = 4


class HeartbeatTimeout(Exception):
    pass


class WebSocketClient(Client):
    """Reads envelopes from ``/ws?since=N``; measures round trips with ``{"ping"}``."""

    name = "ws"

    def __init__(
        self,
        base_url: str,
        emit: Emit | None = None,
        *,
        retry: Backoff | None = None,
        ping_interval: float = DEFAULT_PING_INTERVAL_S,
        ping_timeout: float = DEFAULT_PING_TIMEOUT_S,
        **kw: bool,
    ) -> None:
        super().__init__(base_url, emit, **kw)
        self.retry = retry or ExponentialBackoff()
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.rtt_ms: float | None = None
        """The last measured round-trip time."""

    @property
    def url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + f"/ws?since={self.cursor}"

    async def run(self) -> None:
        while True:
            self._connecting()
            try:
                self.check_online()
                async with connect(
                    self.url, ping_interval=None, open_timeout=5, close_timeout=CLOSE_TIMEOUT_S,
                    max_size=MAX_FRAME_BYTES, proxy=None,
                ) as ws:
                    self.retry.reset()
                    self._connected(f"since={self.cursor}")
                    try:
                        await self.receive(ws)
                    except (HeartbeatTimeout, ProtocolError):
                        # A dead peer will not answer a closing handshake: don't wait for one.
                        abort(ws)
                        raise
            except ConnectionClosed as exc:
                reason = closed_reason(exc)
            except InvalidStatus as exc:
                reason = f"handshake refused: HTTP {exc.response.status_code}"
            except (InvalidHandshake, OSError, TimeoutError, ProtocolError, HeartbeatTimeout) as exc:
                reason = describe_error(exc)
            self._disconnected(reason)
            await self._wait_retry(self.retry.next_delay(), self.retry.describe())

    async def receive(self, ws: ClientConnection) -> None:
        heartbeat = Heartbeat(self.ping_interval, self.ping_timeout, self.clock())
        while True:
            now = self.clock()
            if heartbeat.expired(now):
                raise HeartbeatTimeout(f"no pong within {self.ping_timeout:g}s: peer presumed dead")
            if self.is_offline():
                # The network is down: pings go nowhere and nothing is read, but the
                # heartbeat clock runs on, so a long enough outage is detected as dead.
                if heartbeat.ping_due(now):
                    heartbeat.ping_sent(now)
                await asyncio.sleep(min(OFFLINE_POLL_S, heartbeat.next_deadline(now) - now))
                continue
            if heartbeat.ping_due(now):
                await ws.send(json.dumps({"ping": self.wall_ms()}))
                heartbeat.ping_sent(now)
            try:
                # Cancelling recv() is safe in websockets: no frame is lost. asyncio.timeout
                # (unlike wait_for) spawns no task per frame, which matters at 1000+ msg/s.
                async with asyncio.timeout(heartbeat.next_deadline(now) - now):
                    frame = await ws.recv()
            except TimeoutError:
                continue
            received_ms = self.wall_ms()
            heartbeat.heard(self.clock())
            payload = decode_json(frame)
            if not is_heartbeat(payload):
                self.add_wire_bytes(len(frame) + FRAME_HEADER_BYTES)
            self.handle(payload, received_ms)

    def handle(self, payload: object, received_ms: float) -> None:
        if isinstance(payload, dict):
            if "pong" in payload and isinstance(payload["pong"], int | float):
                self.rtt_ms = received_ms - payload["pong"]
                return
            first = reset_first(payload.get(RESET))
            if first is not None:
                self.on_reset(first)
                return
        self.on_envelope(parse_envelope(payload), received_ms)


def closed_reason(exc: ConnectionClosed) -> str:
    if exc.rcvd is None:
        return "connection lost (no close frame)"
    reason = f": {exc.rcvd.reason}" if exc.rcvd.reason else ""
    return f"server closed ({exc.rcvd.code}{reason})"
