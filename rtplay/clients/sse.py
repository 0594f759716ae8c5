"""Server-Sent Events: an EventSource that follows the WHATWG processing model exactly.

WHATWG HTML §9.2: reconnect after the reconnection time on a network error or the end of
the stream, sending ``Last-Event-ID``; *fail* (no reconnect) on any status other than 200
and on a content type other than ``text/event-stream``. Browsers have no read timeout on
an open stream, so neither has this client: a stalled server goes unnoticed, as it would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from rtplay.clients.base import Emit
from rtplay.clients.core import Fail, ReconnectingClient, parse_reset
from rtplay.clients.http_common import (
    HTTP_ERRORS,
    describe_request_error,
    header_bytes,
    make_http_client,
)
from rtplay.model.eventsource import EventStreamParser, MessageEvent, SSEProtocolError
from rtplay.protocol.envelope import RESET, decode_json, parse_envelope


class SSEClient(ReconnectingClient):
    """Reads ``/sse``; resumes with ``Last-Event-ID``."""

    name = "sse"
    #: §9.2.3 "reestablish the connection": wait the reconnection time, then retry.
    default_policy = "eventsource"
    errors = (*HTTP_ERRORS, SSEProtocolError)

    def __init__(self, base_url: str, emit: Emit | None = None, **kw: Any) -> None:
        super().__init__(base_url, emit, **kw)
        self.parser = EventStreamParser()
        self._http: httpx.AsyncClient | None = None

    def start_from(self, seq: int) -> None:
        """As if event ``seq`` had been the last one seen: the first request sends it as
        ``Last-Event-ID`` (WHATWG HTML §9.2.4), so the server does not replay what came before."""
        super().start_from(seq)
        self.parser = EventStreamParser(str(seq) if seq else "")

    @asynccontextmanager
    async def resources(self) -> AsyncIterator[None]:
        async with make_http_client(read_timeout=None) as self._http:
            yield

    def explain(self, exc: BaseException) -> tuple[str, float | None]:
        return describe_request_error(exc), None

    def server_hint(self) -> float | None:
        """The reconnection time the stream set with ``retry:`` (seconds)."""
        ms = self.parser.reconnection_time_ms
        return None if ms is None else ms / 1000

    def stream_url(self) -> str:
        """The event stream's URL."""
        return f"{self.base_url}/sse"

    async def attempt(self) -> str:
        """One connection: returns why it ended; raises Fail when it must not reconnect."""
        assert self._http is not None, "run() opens the HTTP client"
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.parser.last_event_id:
            headers["Last-Event-ID"] = self.parser.last_event_id
        self.check_online()
        async with self._http.stream("GET", self.stream_url(), headers=headers) as response:
            check_response(response)
            self.add_wire_bytes(header_bytes(response))
            detail = f"Last-Event-ID: {self.parser.last_event_id or '(none)'}"
            self._connected(detail)
            self.parser.new_stream()
            async for chunk in response.aiter_raw():
                await self.wait_online()  # offline: the stream goes silent, nothing is read
                received_ms = self.wall_ms()
                keepalive_before = self.parser.keepalive_chars
                events = self.parser.feed(chunk)
                # Wire bytes leave out keep-alives on every transport (`: ping` comments here).
                self.add_wire_bytes(len(chunk) - (self.parser.keepalive_chars - keepalive_before))
                for event in events:
                    if event.type == "closing":  # the server says why it ends the stream
                        return f"server ended the stream: {event.data[:200]}"
                    self.handle(event, received_ms)
        return "server ended the stream"

    def handle(self, event: MessageEvent, received_ms: float) -> None:
        if event.type == RESET:
            self.on_reset(parse_reset(decode_json(event.data)))
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
