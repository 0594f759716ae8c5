"""Refused connection attempts per second on one core: what a crowd's reconnect wave costs.

    unshare -n -- bash -c 'ip link set lo up && ulimit -n $(ulimit -Hn) && python benchmarks/attempts.py'
    python benchmarks/attempts.py --clients 5000 --rounds 3

During an outage every client of a crowd retries into a refused port, and a worker's peak
attempts/s (the figure ``benchmarks/crowd.py`` compares between retry policies) is how fast
its one core starts them. This starts ``--clients`` of rtplay's ws clients at once in this
process (uvloop) against a port nobody listens on and times them until each has been refused
and has decided its wait (the client's whole cycle, accounting and events included); then
the same number of bare attempts through the raw libraries in the same run, as baselines:
websockets' asyncio ``connect()`` (what the ws client used before
``rtplay/clients/ws_wire.py``) and uvloop's ``loop.create_connection``. Printed: attempts per
second of each, and rtplay's as a share of each raw one.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable

import uvloop
from websockets.asyncio.client import connect

from rtplay.clients.ws import WebSocketClient
from rtplay.model.events import Event, RetryScheduled

#: The whole benchmark's bound: a stuck library must not hang it.
TIMEOUT_S = 60.0


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def rtplay_burst(port: int, clients: int) -> float:
    """Seconds from starting ``clients`` ws clients at once to each having made its first
    attempt, been refused and decided its wait (the client's whole cycle but the wait)."""
    decided = 0
    done = asyncio.Event()

    def emit(event: Event) -> None:
        nonlocal decided
        if isinstance(event, RetryScheduled):
            decided += 1
            if decided == clients:
                done.set()

    crowd = [
        WebSocketClient(f"http://127.0.0.1:{port}", emit, retry="fixed:60", rng=random.Random(i), quiet_pings=True)
        for i in range(clients)
    ]
    started = time.perf_counter()
    tasks = [asyncio.create_task(c.run()) for c in crowd]
    try:
        async with asyncio.timeout(TIMEOUT_S):
            await done.wait()
        return time.perf_counter() - started
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def raw_burst(attempt: Callable[[], Awaitable[None]], clients: int) -> float:
    """Seconds from starting ``clients`` bare attempts at once to the last one refused."""

    async def one() -> None:
        try:
            await attempt()
        except OSError:
            pass

    started = time.perf_counter()
    async with asyncio.timeout(TIMEOUT_S):
        await asyncio.gather(*(one() for _ in range(clients)))
    return time.perf_counter() - started


async def main(clients: int, rounds: int) -> None:
    port = free_port()
    loop = asyncio.get_running_loop()

    async def websockets_connect() -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws?since=0", open_timeout=20, proxy=None, ping_interval=None):
            pass

    async def create_connection() -> None:
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    print(f"{clients} refused attempts started at once, one core (uvloop), {rounds} rounds; attempts per second")
    print("| round | rtplay ws client | websockets connect() | loop.create_connection | rtplay / connect() | rtplay / create_connection |")
    print("|---|---|---|---|---|---|")
    for n in range(1, rounds + 1):
        ours = clients / await rtplay_burst(port, clients)
        ws = clients / await raw_burst(websockets_connect, clients)
        bare = clients / await raw_burst(create_connection, clients)
        print(f"| {n} | {ours:,.0f} | {ws:,.0f} | {bare:,.0f} | {ours / ws:.2f} | {ours / bare:.2f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uvloop.run(main(args.clients, args.rounds))
