"""An example WebSocket server (websockets), with or without a resume cursor, to aim rtplay at.

    python examples/ws_server.py --port 8082 --rate 20 --log /tmp/ws-published.jsonl
    python examples/ws_server.py --port 8082 --resume      # honours ws://…/live?since=N

Every message is ``{"seq": N, "sent_ms": T, "text": "..."}``. Without --resume a client that
reconnects gets only what is published from then on (what it missed while away is gone);
with --resume, ``?since=N`` first replays every kept message after N. It shares no code with
rtplay: copy it. Each published message is logged (seq and send stamp) to --log, and the
count is printed when it stops, so rtplay's figures can be checked against it.
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
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

log = logging.getLogger("ws_server")

#: Messages kept for ?since= resumes: a minute at 100 msg/s.
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


async def next_or_closed(queue: asyncio.Queue[tuple[int, str]], ws: ServerConnection) -> tuple[int, str] | None:
    """The next message to send, or None once the connection is closed (so shutdown never waits
    for a quiet publisher)."""
    get = asyncio.ensure_future(queue.get())
    closed = asyncio.ensure_future(ws.wait_closed())
    await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
    closed.cancel()
    if get.done():
        return get.result()
    get.cancel()
    return None


def since(path: str) -> int | None:
    value = parse_qs(urlsplit(path).query).get("since", [""])[0]
    return int(value) if value.isdigit() else None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--rate", type=float, default=20.0, help="messages per second")
    parser.add_argument("--resume", action="store_true", help="honour ?since=N (replay what followed N)")
    parser.add_argument("--log", help="append one JSON line per published message (seq, sent_ms)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    stamps = open(args.log, "a") if args.log else None
    publisher = Publisher(stamps)

    async def handler(ws: ServerConnection) -> None:
        queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue(CLIENT_QUEUE)
        publisher.queues.add(queue)
        last = since(ws.request.path) if args.resume and ws.request is not None else None
        try:
            if last is not None:
                for seq, data in [m for m in publisher.history if m[0] > last]:
                    await ws.send(data)
                    last = seq
            while (item := await next_or_closed(queue, ws)) is not None:
                seq, data = item
                if last is None or seq > last:
                    await ws.send(data)
        except ConnectionClosed:  # the client went away
            log.info("client gone")
        finally:
            publisher.queues.discard(queue)

    async with serve(handler, "127.0.0.1", args.port) as server:
        port = list(server.sockets)[0].getsockname()[1]
        print(f"listening on ws://127.0.0.1:{port}/live ({'with' if args.resume else 'without'} ?since= resume)",
              flush=True)
        task = asyncio.create_task(publisher.run(args.rate))
        try:
            await stopped()
        finally:
            task.cancel()
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
