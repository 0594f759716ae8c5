"""An example SSE endpoint that honours Last-Event-ID (aiohttp), to aim rtplay at.

    python examples/sse_server.py --port 8081 --rate 20 --log /tmp/sse-published.jsonl

GET /events streams ``id: N`` + ``data: {"seq": N, "sent_ms": T, "text": "..."}`` per message;
a reconnect with ``Last-Event-ID: N`` first gets every kept message after N. It shares no
code with rtplay: copy it. Each published message is logged (seq and send stamp) to --log,
and the count is printed when it stops, so rtplay's figures can be checked against it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import time
from collections import deque
from typing import TextIO

from aiohttp import web

log = logging.getLogger("sse_server")

#: Messages kept for Last-Event-ID resumes: a minute at 100 msg/s.
HISTORY = 6000
#: Messages queued per connected client before it is cut as too slow.
CLIENT_QUEUE = 1000


class Publisher:
    """Publishes numbered messages, keeps the recent ones, fans them out."""

    def __init__(self, stamps: TextIO | None) -> None:
        self.seq = 0
        self.history: deque[tuple[int, str]] = deque(maxlen=HISTORY)
        self.queues: set[asyncio.Queue[tuple[int, str]]] = set()
        self.stamps = stamps

    def publish(self) -> None:
        self.seq += 1
        sent_ms = time.time() * 1000
        data = json.dumps({"seq": self.seq, "sent_ms": sent_ms, "text": f"update {self.seq}"})
        self.history.append((self.seq, data))
        if self.stamps is not None:
            self.stamps.write(json.dumps({"seq": self.seq, "sent_ms": sent_ms}) + "\n")
            self.stamps.flush()
        for queue in list(self.queues):
            if queue.full():
                self.queues.discard(queue)
            else:
                queue.put_nowait((self.seq, data))

    async def run(self, rate: float) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            self.publish()
            next_at += 1 / rate
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def events(request: web.Request) -> web.StreamResponse:
    publisher: Publisher = request.app["publisher"]
    last = request.headers.get("Last-Event-ID", "")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(CLIENT_QUEUE)
    publisher.queues.add(queue)
    try:
        await response.write(b"retry: 500\n\n")
        if last.isdigit():  # resume: everything kept after the last id the client saw
            for seq, data in [m for m in publisher.history if m[0] > int(last)]:
                await response.write(f"id: {seq}\ndata: {data}\n\n".encode())
                last = str(seq)
        while True:
            seq, data = await queue.get()
            if last.isdigit() and seq <= int(last):
                continue  # already sent while replaying
            await response.write(f"id: {seq}\ndata: {data}\n\n".encode())
    except ConnectionResetError:  # the client went away
        log.info("client gone after %s", last or "nothing")
    finally:
        publisher.queues.discard(queue)
    return response


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--log", help="append one JSON line per published message (seq, sent_ms)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    stamps = open(args.log, "a") if args.log else None
    publisher = Publisher(stamps)
    app = web.Application()
    app["publisher"] = publisher
    app.router.add_get("/events", events)
    runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", args.port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"listening on http://127.0.0.1:{port}/events", flush=True)
    task = asyncio.create_task(publisher.run(args.rate))
    try:
        await stopped()
    finally:
        task.cancel()
        await runner.cleanup()
        print(f"published {publisher.seq} messages", flush=True)
        if stamps is not None:
            stamps.close()


async def stopped() -> None:
    """Until Ctrl-C or SIGTERM."""
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
