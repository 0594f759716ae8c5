"""The held long-polls probe of ``benchmarks/hostile.py``: clients that hold ``GET /longpoll``.

Each client keeps one connection, asks ``/longpoll?since=<its cursor>`` and asks again at once
on every answer, as a browser's long-polling loop does. It notes each envelope's latency (the
answer read, less the envelope's ``t``: publish to answer), and the server's RSS and loop lag
come from ``GET /control/status``. Raw asyncio protocols, so that 10,000 clients cost the
client process little; this script imports nothing of rtplay.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import statistics
import time
from typing import Any

import aiohttp

HOST = "127.0.0.1"
HELD_TIMEOUT_S = 25
"""The hold each long-poller asks for (the server's default)."""
HELD_SETTLE_S = 3.0
"""After the last long-poller connected, how long before the measured window opens."""


class HeldPoll(asyncio.Protocol):
    """One long-poller on a keep-alive connection: asks from its cursor, reads the answer,
    notes each envelope's latency (answer read - ``t``), asks again at once."""

    def __init__(self, cursor: int, waves: list[float], tally: dict[str, int]) -> None:
        self.cursor = cursor
        self.waves = waves
        self.tally = tally
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.measuring = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.ask()

    def ask(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(
                f"GET /longpoll?since={self.cursor}&timeout={HELD_TIMEOUT_S} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
            )

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self.buffer[:end]).lower()
            length = re.search(rb"content-length: *(\d+)", head)
            size = int(length.group(1)) if length else 0
            if len(self.buffer) < end + 4 + size:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + size])
            del self.buffer[: end + 4 + size]
            self.answer(head.split(b" ", 2)[1], body)

    def answer(self, status: bytes, body: bytes) -> None:
        now = time.time() * 1000
        if status == b"200":
            batch = json.loads(body)
            if self.measuring:
                self.waves.extend(now - m["t"] for m in batch["messages"])
            self.cursor = batch["last"]
            self.tally["answers"] += 1
        elif status == b"204":
            self.tally["timeouts"] += 1
        else:
            self.tally["errors"] += 1
        self.ask()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tally["closed"] += 1
        self.transport = None


async def control_status(control_port: int, load_s: float = 10.0) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(
        f"http://{HOST}:{control_port}/control/status?load_s={load_s}"
    ) as response:
        status: dict[str, Any] = await response.json()
        return status


async def held_longpolls(http_port: int, control_port: int, count: int, hold_s: float) -> str:
    """Hold ``count`` long-polls, measure ``hold_s`` s of waves, then let go; a one-line outcome."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    loop = asyncio.get_running_loop()
    waves: list[float] = []
    tally = {"answers": 0, "timeouts": 0, "errors": 0, "closed": 0}
    first = await control_status(control_port)
    rss_before, cursor = first["load"]["rss_kb"], int(first["published"])
    polls: list[HeldPoll] = []
    start = time.monotonic()
    try:
        for i in range(count):
            polls.append(HeldPoll(cursor, waves, tally))
            await loop.create_connection(lambda: polls[-1], HOST, http_port)
            if i % 200 == 199:
                await asyncio.sleep(0)
    except OSError as exc:
        return f"opened {len(polls)}, then {exc.strerror}"
    took = time.monotonic() - start
    await asyncio.sleep(HELD_SETTLE_S)
    for poll in polls:
        poll.measuring = True
    answers = tally["answers"]
    await asyncio.sleep(hold_s)
    held = await control_status(control_port, hold_s)
    for poll in polls:
        poll.measuring = False
    answered = tally["answers"] - answers
    load = held["load"]
    lags = sorted(v for _, v in load["loop_lag_ms"])
    lag99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else 0.0
    per_kb = (load["rss_kb"] - rss_before) / max(1, count)
    lat = sorted(waves)
    wave = (f"{statistics.median(lat):.0f}/{lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.0f} ms"
            if lat else "no answers")
    for poll in polls:
        if poll.transport is not None:
            poll.transport.close()
    await asyncio.sleep(0.5)
    return (f"{len(polls)} held in {took:.1f} s; {answered} answers in {hold_s:g} s, held wave p50/p99 {wave};"
            f" {per_kb:.1f} KB each; server loop lag p99/max {lag99:.0f}/{load['max_loop_lag_ms']:.0f} ms;"
            f" {tally['timeouts']} timed out, {tally['errors']} errors, {tally['closed']} closed")
