"""Short polling: ask for everything after the cursor every ``interval`` seconds."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from rtplay.clients.base import Client, Emit
from rtplay.clients.http_common import (
    HTTP_ERRORS,
    StatusError,
    apply_batch,
    describe_request_error,
    header_bytes,
    make_http_client,
)

#: Default polling interval; latency is then about half of it on average.
DEFAULT_INTERVAL_S = 1.0


class PollClient(Client):
    """Polls ``/poll?since=N`` on a fixed schedule and keeps polling through errors."""

    name = "poll"

    def __init__(
        self, base_url: str, emit: Emit | None = None, *, interval: float = DEFAULT_INTERVAL_S, **kw: Any
    ) -> None:
        super().__init__(base_url, emit, **kw)
        self.interval = interval

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with make_http_client(read_timeout=max(5.0, self.interval * 2)) as http:
            self._connecting()
            next_at = loop.time()
            while True:
                await self.poll_once(http)
                # A fixed schedule, not "interval after the response", so polls don't drift.
                next_at = max(next_at + self.interval, loop.time())
                await asyncio.sleep(next_at - loop.time())

    async def poll_once(self, http: httpx.AsyncClient) -> None:
        """One poll; an error is reported and the next poll comes on schedule regardless."""
        try:
            self.check_online()
            response = await http.get(f"{self.base_url}/poll", params={"since": self.cursor})
            received_ms = self.wall_ms()
            if response.status_code != 200:
                raise StatusError(response)
            self.add_wire_bytes(header_bytes(response) + len(response.content))
            if not self.conn.connected:
                self._connected(f"since={self.cursor}")
            apply_batch(self, response.content, received_ms)
        except HTTP_ERRORS as exc:
            if self.conn.connected or self.conn.connects == 0:
                self._disconnected(describe_request_error(exc))
            self._retry_in(self.interval, f"next poll in {self.interval:g}s (fixed interval)")
