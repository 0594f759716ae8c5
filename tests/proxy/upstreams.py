"""Upstreams written here, on nothing of rtplay's server: an aiohttp SSE/HTTP app and a
`websockets` server, as a user's own app would be."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve


@dataclass
class SseApp:
    """``GET /events``: ``retry: 300``, then ``id: N`` + ``data: {"seq": N, "t": ms}`` every
    ``interval`` s, resuming after ``Last-Event-ID``; ``GET /hello``: a plain answer."""

    interval: float = 0.02
    retry_ms: int = 300
    asked: list[str | None] = field(default_factory=list)
    """The Last-Event-ID of every /events request."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/events", self.events)
        app.router.add_get("/hello", self.hello)
        app.router.add_post("/echo", self.echo)
        return app

    async def hello(self, request: web.Request) -> web.Response:
        return web.Response(text="hello " + request.query.get("since", ""))

    async def echo(self, request: web.Request) -> web.Response:
        return web.Response(body=await request.read())

    async def events(self, request: web.Request) -> web.StreamResponse:
        last = request.headers.get("Last-Event-ID")
        self.asked.append(last)
        seq = int(last) if last and last.isdigit() else 0
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
        await response.prepare(request)
        await response.write(f"retry: {self.retry_ms}\n\n".encode())
        try:
            while True:
                seq += 1
                body = json.dumps({"seq": seq, "t": time.time() * 1000})
                await response.write(f"id: {seq}\ndata: {body}\n\n".encode())
                await asyncio.sleep(self.interval)
        except ConnectionResetError:
            pass
        return response


@asynccontextmanager
async def sse_upstream(app: SseApp | None = None) -> AsyncIterator[tuple[str, SseApp]]:
    """The SSE app on 127.0.0.1:0: (base URL, app)."""
    app = app or SseApp()
    runner = web.AppRunner(app.app(), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", app
    finally:
        await runner.cleanup()


async def ws_handler(ws: ServerConnection) -> None:
    """``/echo`` echoes; ``/close4001`` says hello then closes with 4001 "bye from upstream";
    ``/ticks`` sends ``{"seq", "t"}`` every 20 ms."""
    path = ws.request.path if ws.request else "/"
    if path.startswith("/close4001"):
        await ws.send("hello")
        await ws.close(4001, "bye from upstream")
    elif path.startswith("/ticks"):
        seq = 0
        while True:
            seq += 1
            await ws.send(json.dumps({"seq": seq, "t": time.time() * 1000}))
            await asyncio.sleep(0.02)
    else:
        async for message in ws:
            await ws.send(message)


@asynccontextmanager
async def ws_upstream() -> AsyncIterator[str]:
    """The `websockets` server on 127.0.0.1:0: its base URL (http://, as a proxy upstream)."""
    async with serve(ws_handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"http://127.0.0.1:{port}"
