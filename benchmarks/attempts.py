"""Refused connection attempts per second on one core: what a crowd's reconnect wave costs.

    unshare -n -- bash -c 'ip link set lo up && ulimit -n $(ulimit -Hn) && python benchmarks/attempts.py'
    python benchmarks/attempts.py --clients 5000 --rounds 3 --seconds 2

During an outage every client of a crowd retries into a refused port, and a worker's peak
attempts/s (the figure ``benchmarks/crowd.py`` compares between retry policies) is how fast
its one core starts them. This runs ``--clients`` of rtplay's ws clients in this process
(uvloop) against a port nobody listens on, retrying with no wait (each attempt the client's
whole cycle: refused, accounted, decided), and counts their attempts per second; then the same
number of tasks making bare attempts through the raw libraries in the same run, as baselines:
websockets' asyncio ``connect()`` (what the ws client used before
``rtplay/clients/ws_wire.py``) and uvloop's ``loop.create_connection``. Printed: attempts per
second of each, and rtplay's as a share of each raw one.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import uvloop
from websockets.asyncio.client import connect

from rtplay.clients.ws import WebSocketClient
from rtplay.model.events import Connecting, Event

#: Attempts before this many seconds are the burst's start-up (tasks starting), not counted.
WARM_S = 0.5


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Tally:
    """Attempts counted once the burst is warm."""

    def __init__(self) -> None:
        self.attempts = 0
        self.counting = False

    def add(self) -> None:
        self.attempts += self.counting

    async def rate(self, tasks: list[asyncio.Task[None]], seconds: float) -> float:
        """Attempts per second of ``tasks`` over ``seconds`` after :data:`WARM_S`; then they end."""
        try:
            await asyncio.sleep(WARM_S)
            self.counting, started = True, time.perf_counter()
            await asyncio.sleep(seconds)
            return self.attempts / (time.perf_counter() - started)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def rtplay_rate(port: int, clients: int, seconds: float) -> float:
    """Attempts per second of ``clients`` ws clients retrying at once with no wait (policy
    ``immediate``): each attempt the client's whole cycle, refused, accounted, decided."""
    tally = Tally()

    def emit(event: Event) -> None:
        if isinstance(event, Connecting):
            tally.add()

    crowd = [WebSocketClient(f"http://127.0.0.1:{port}", emit, retry="immediate", quiet_pings=True) for _ in range(clients)]
    return await tally.rate([asyncio.create_task(c.run()) for c in crowd], seconds)


async def raw_rate(attempt: Callable[[], Awaitable[None]], clients: int, seconds: float) -> float:
    """Attempts per second of ``clients`` tasks each making bare attempts one after another."""
    tally = Tally()

    async def one() -> None:
        while True:
            try:
                await attempt()
            except OSError:
                pass
            tally.add()

    return await tally.rate([asyncio.create_task(one()) for _ in range(clients)], seconds)


async def main(clients: int, rounds: int, seconds: float) -> None:
    port = free_port()
    loop = asyncio.get_running_loop()

    async def websockets_connect() -> None:
        async with connect(f"ws://127.0.0.1:{port}/ws?since=0", open_timeout=20, proxy=None, ping_interval=None):
            pass

    async def create_connection() -> None:
        await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)

    print(f"{clients} clients retrying into a refused port with no wait, one core (uvloop), "
          f"{seconds:g} s a measure, {rounds} rounds; attempts per second")
    print("| round | rtplay ws client | websockets connect() | loop.create_connection | rtplay / connect() | rtplay / create_connection |")
    print("|---|---|---|---|---|---|")
    for n in range(1, rounds + 1):
        ours = await rtplay_rate(port, clients, seconds)
        ws = await raw_rate(websockets_connect, clients, seconds)
        bare = await raw_rate(create_connection, clients, seconds)
        print(f"| {n} | {ours:,.0f} | {ws:,.0f} | {bare:,.0f} | {ours / ws:.2f} | {ours / bare:.2f} |", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    uvloop.run(main(args.clients, args.rounds, args.seconds))
