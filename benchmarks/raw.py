"""The raw libraries, with none of rtplay in the way: the baselines ``perf.py`` divides by.

Each probe starts its own server and client on 127.0.0.1 in this process and event loop
(as rtplay's session does until the server has its own process), sends envelope-sized
messages, and is bounded by a message count and :data:`PROBE_TIMEOUT_S`. Every receiver
decodes each message's JSON, as any consumer must, and nothing more.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import httpx
from aiohttp import web
from aioquic.asyncio import QuicConnectionProtocol, connect, serve
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import QuicEvent, StreamDataReceived
from aiortc import RTCPeerConnection

from rtplay.compat.aioice import gather_on
from servers.core.cert import generate_certificate

HOST = "127.0.0.1"

#: No probe may take longer than this (a stuck library must not hang the benchmark).
PROBE_TIMEOUT_S = 30.0

#: A message of the same size as an rtplay envelope with the default 32-character payload.
MESSAGE = json.dumps({"seq": 123456, "t": 1764270000123.456, "data": "msg-123456" + "." * 22}, separators=(",", ":"))


@dataclass
class Blast:
    """One raw one-way blast: how fast the library moved ``count`` messages."""

    count: int
    seconds: float
    first_s: float
    """From starting the server to the first message at the client (the launch figure)."""

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


@asynccontextmanager
async def aiohttp_app(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, HOST, 0)
    await site.start()
    try:
        yield f"http://{HOST}:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# --- WebSocket ----------------------------------------------------------------------------


async def ws_echo_round_trip(count: int) -> float:
    """Mean µs of a ping/pong through a bare aiohttp echo (no heartbeat, no JSON)."""

    async def echo(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for msg in socket:
            await socket.send_str(msg.data)
        return socket

    app = web.Application()
    app.router.add_get("/", echo)
    async with aiohttp_app(app) as url:
        return await round_trips(url, count)


async def round_trips(url: str, count: int) -> float:
    """Mean µs of ``{"ping": t}`` sent and its answer received over ``url``, after a warm-up."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for i in range(50 + count):
            if i == 50:
                start = time.perf_counter()
            await ws.send_str(json.dumps({"ping": time.time() * 1000}))
            await ws.receive()
        return (time.perf_counter() - start) / count * 1e6


async def ws_blast(count: int) -> Blast:
    began = time.perf_counter()

    async def blast(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        for _ in range(count):
            await socket.send_str(MESSAGE)
        await socket.close()
        return socket

    app = web.Application()
    app.router.add_get("/", blast)
    async with aiohttp_app(app) as url, aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        got, first, start = 0, 0.0, 0.0
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            if got == 0:
                start = time.perf_counter()
                first = start - began
            json.loads(msg.data)
            got += 1
        return Blast(got - 1, time.perf_counter() - start, first)


# --- Server-Sent Events (aiohttp server, httpx reader) --------------------------------------


async def sse_blast(count: int, batch: int = 256) -> Blast:
    began = time.perf_counter()

    async def blast(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, count, batch):
            chunk = "".join(f"id: {i}\ndata: {MESSAGE}\n\n" for i in range(start, min(count, start + batch)))
            await response.write(chunk.encode())
        return response

    app = web.Application()
    app.router.add_get("/", blast)
    async with aiohttp_app(app) as url, httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as http:
        async with http.stream("GET", url) as response:
            got, first, start = 0, 0.0, 0.0
            async for line in response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                if got == 0:
                    start = time.perf_counter()
                    first = start - began
                json.loads(line[6:])
                got += 1
        return Blast(got - 1, time.perf_counter() - start, first)


# --- WebRTC data channel (aiortc on both ends) -----------------------------------------------

#: Pause sending while the channel buffers more than this (the same back-pressure rtplay uses).
RTC_HIGH_WATER = 256 * 1024


async def rtc_blast(count: int) -> Blast:
    began = time.perf_counter()
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    done = asyncio.get_running_loop().create_future()
    state = {"got": 0, "start": 0.0, "first": 0.0}

    def on_channel(channel: object) -> None:
        @channel.on("message")  # type: ignore[attr-defined]
        def on_message(message: str) -> None:
            json.loads(message)
            if state["got"] == 0:
                state["start"] = time.perf_counter()
                state["first"] = state["start"] - began
            state["got"] += 1
            if state["got"] == count and not done.done():
                done.set_result(None)

    receiver.on("datachannel", on_channel)
    channel = sender.createDataChannel("blast")
    opened = asyncio.Event()
    channel.on("open", opened.set)
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = RTC_HIGH_WATER // 4
    channel.on("bufferedamountlow", drained.set)
    try:
        with gather_on(HOST):
            await sender.setLocalDescription(await sender.createOffer())
            await receiver.setRemoteDescription(sender.localDescription)
            await receiver.setLocalDescription(await receiver.createAnswer())
        await sender.setRemoteDescription(receiver.localDescription)
        await asyncio.wait_for(opened.wait(), PROBE_TIMEOUT_S)
        for _ in range(count):
            if channel.bufferedAmount > RTC_HIGH_WATER:
                drained.clear()
                await asyncio.wait_for(drained.wait(), PROBE_TIMEOUT_S)
            channel.send(MESSAGE)
        await asyncio.wait_for(done, PROBE_TIMEOUT_S)
        return Blast(count - 1, time.perf_counter() - state["start"], state["first"])
    finally:
        await sender.close()
        await receiver.close()


# --- QUIC stream (aioquic on both ends) -------------------------------------------------------

ALPN = ["rtplay-raw"]


class _Receiver(QuicConnectionProtocol):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.got = 0
        self.start = 0.0
        self.tail = b""
        self.finished = asyncio.get_running_loop().create_future()

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, StreamDataReceived):
            lines = (self.tail + event.data).split(b"\n")
            self.tail = lines.pop()
            if self.got == 0 and lines:
                self.start = time.perf_counter()
            for line in lines:
                json.loads(line)
            self.got += len(lines)
            if event.end_stream and not self.finished.done():
                self.finished.set_result(None)


async def quic_blast(count: int, batch: int = 256) -> Blast:
    """The server opens a stream and writes ``count`` lines, flushing per batch as rtplay does."""
    began = time.perf_counter()
    cert = generate_certificate()
    server_config = QuicConfiguration(is_client=False, alpn_protocols=ALPN)
    server_config.certificate, server_config.private_key = cert.certificate, cert.private_key

    class Sender(QuicConnectionProtocol):
        def quic_event_received(self, event: QuicEvent) -> None:
            if isinstance(event, StreamDataReceived) and event.data == b"go":
                asyncio.get_running_loop().create_task(self.blast(event.stream_id))

        async def blast(self, stream_id: int) -> None:
            line = (MESSAGE + "\n").encode()
            for start in range(0, count, batch):
                n = min(batch, count - start)
                self._quic.send_stream_data(stream_id, line * n, end_stream=start + n >= count)
                self.transmit()
                await asyncio.sleep(0)

    server = await serve(HOST, 0, configuration=server_config, create_protocol=Sender)
    port = server._transport.get_extra_info("sockname")[1]
    client_config = QuicConfiguration(is_client=True, alpn_protocols=ALPN, verify_mode=ssl.CERT_NONE)
    try:
        async with connect(HOST, port, configuration=client_config, create_protocol=_Receiver) as client:
            assert isinstance(client, _Receiver)
            stream_id = client._quic.get_next_available_stream_id()
            client._quic.send_stream_data(stream_id, b"go")
            client.transmit()
            await asyncio.wait_for(client.finished, PROBE_TIMEOUT_S)
            return Blast(client.got - 1, time.perf_counter() - client.start, client.start - began)
    finally:
        server.close()
