"""Server-Sent Events: an EventSource that follows the WHATWG processing model exactly.

WHATWG HTML §9.2: reconnect after the reconnection time on a network error or the end of
the stream, sending ``Last-Event-ID``; *fail* (no reconnect) on any status other than 200
and on a content type other than ``text/event-stream``. Browsers have no read timeout on
an open stream, so neither has this client: a stalled server goes unnoticed, as it would.
"""

from __future__ import annotations

import httpx

from rtplay.clients.base import Client, Emit
from rtplay.clients.http_common import (
    HTTP_ERRORS,
    describe_error,
    header_bytes,
    make_http_client,
)
from rtplay.protocol.envelope import RESET, ProtocolError, decode_json, parse_envelope, reset_first
from rtplay.sse import EventStreamParser, MessageEvent, SSEProtocolError

#: Reconnection time until the stream sends ``retry:``. The spec leaves it to the user agent;
#: Chromium and Firefox both use about 3 s.
DEFAULT_RECONNECTION_MS = 3000


class Fail(Exception):
    """The connection fails for good (WHATWG "fail the connection")."""


class SSEClient(Client):
    """Reads ``/sse``; resumes with ``Last-Event-ID``."""

    name = "sse"

    def __init__(self, base_url: str, emit: Emit | None = None, **kw: bool) -> None:
        super().__init__(base_url, emit, **kw)
        self.parser = EventStreamParser()

    async def run(self) -> None:
        async with make_http_client(read_timeout=None) as http:
            while True:
                self._connecting()
                try:
                    reason = await self.stream_once(http)
                except Fail as exc:
                    self._failed(str(exc))
                    return
                except (*HTTP_ERRORS, SSEProtocolError) as exc:
                    reason = describe_error(exc)
                self._disconnected(reason)
                await self.wait_reconnect()

    async def wait_reconnect(self) -> None:
        """§9.2.3 "reestablish the connection": wait the reconnection time, then retry."""
        ms = self.parser.reconnection_time_ms
        policy = "retry: field" if ms is not None else "default reconnection time"
        await self._wait_retry((ms if ms is not None else DEFAULT_RECONNECTION_MS) / 1000, policy)

    async def stream_once(self, http: httpx.AsyncClient) -> str:
        """One connection: returns why it ended; raises Fail when it must not reconnect."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.parser.last_event_id:
            headers["Last-Event-ID"] = self.parser.last_event_id
        self.check_online()
        async with http.stream("GET", f"{self.base_url}/sse", headers=headers) as response:
            check_response(response)
            self.add_wire_bytes(header_bytes(response))
            detail = f"Last-Event-ID: {self.parser.last_event_id or '(none)'}"
            self._connected(detail)
            self.parser.new_stream()
            async for chunk in response.aiter_raw():
                await self.wait_online()  # offline: the stream goes silent, nothing is read
                received_ms = self.wall_ms()
                self.add_wire_bytes(len(chunk))
                for event in self.parser.feed(chunk):
                    if event.type == "closing":  # the server says why it ends the stream
                        return f"server ended the stream: {event.data[:200]}"
                    self.handle(event, received_ms)
        return "server ended the stream"

    def handle(self, event: MessageEvent, received_ms: float) -> None:
        if event.type == RESET:
            first = reset_first(decode_json(event.data))
            if first is None:
                raise ProtocolError(f"bad reset event: {event.data[:60]!r}")
            self.on_reset(first)
        elif event.type == "message":
            self.on_envelope(parse_envelope(decode_json(event.data)), received_ms)


def check_response(response: httpx.Response) -> None:
    """§9.2.3: anything but a 200 with ``text/event-stream`` fails the connection."""
    if response.status_code != 200:
        # A 204 is how a server tells an EventSource to stop reconnecting.
        raise Fail(f"HTTP {response.status_code}: EventSource does not reconnect")
    mime = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if mime != "text/event-stream":
        raise Fail(f"wrong Content-Type {mime or '(none)'!r}: EventSource does not reconnect")
