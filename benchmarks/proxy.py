"""The fault proxy's cost: one run against the same upstream, through the proxy and direct.

    unshare -n -- bash -c 'ip link set lo up && ulimit -n 20000 && python benchmarks/proxy.py'

Three processes, as in use: the upstream (a `websockets` echo/tick server and an aiohttp SSE
firehose, written here), ``rtplay proxy`` (headless, no faults) and this client. Prints:

- WS round trip (1 connection, sequential echoes): median and p99, proxy vs direct (target ≤ 2×);
- SSE events/s, one stream read as fast as it comes: proxy vs direct (target ≥ 0.5×);
- N WS connections through the proxy and N direct, at the same time, at 1 msg/s each: one-way
  latency p50/p99 of each; the added p99 is their difference (target < 10 ms).
On a shared machine the figures move with the load; say so with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
EVENT = b"id: %d\ndata: {\"seq\": %d, \"pad\": \"" + b"x" * 60 + b"\"}\n\n"


# --- the upstream (its own process) -----------------------------------------------------------


async def upstream_main() -> None:
    from aiohttp import web
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.exceptions import ConnectionClosed

    async def ws_handler(ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        try:
            if path.startswith("/ticks"):
                await asyncio.sleep(float(path.rsplit("=", 1)[-1]))  # stagger: ?offset=S
                while True:
                    await ws.send(json.dumps({"t": time.time() * 1000}))
                    await asyncio.sleep(1.0)
            async for message in ws:
                await ws.send(message)
        except (ConnectionClosed, ConnectionError):
            pass  # the client left: the run is over

    async def firehose(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        seq = 0
        try:
            while True:
                batch = b"".join(EVENT % (seq + i, seq + i) for i in range(1, 51))
                seq += 50
                await response.write(batch)
        except ConnectionError:
            pass  # the reader left
        return response

    app = web.Application()
    app.router.add_get("/firehose", firehose)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    async with serve(ws_handler, "127.0.0.1", 0, ping_interval=None, max_queue=4) as server:
        ws_port = next(iter(server.sockets)).getsockname()[1]
        print(json.dumps({"http": runner.addresses[0][1], "ws": ws_port}), flush=True)
        await asyncio.Event().wait()


# --- the client (this process) ------------------------------------------------------------------


async def ws_round_trips(url: str, count: int) -> list[float]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url + "/echo") as ws:
        times = []
        for i in range(count):
            started = time.perf_counter()
            await ws.send_str(str(i))
            await ws.receive()
            times.append((time.perf_counter() - started) * 1000)
        return times


async def sse_rate(url: str, seconds: float) -> float:
    from rtplay.model.eventsource import EventStreamParser

    parser, count = EventStreamParser(), 0
    async with aiohttp.ClientSession() as http, http.get(url + "/firehose") as response:
        started = time.perf_counter()
        async for chunk in response.content.iter_any():
            count += len(parser.feed(chunk))
            if time.perf_counter() - started >= seconds:
                break
        return count / (time.perf_counter() - started)


async def crowd_latency(urls: list[str], clients: int, seconds: float) -> list[list[float]]:
    """One-way latency of ``clients`` WS connections at 1 msg/s to each of ``urls`` at once (so
    direct and proxied connections share the same moments of a busy machine), measured for
    ``seconds`` once every connection is open (opening thousands is not the steady state)."""
    latencies: list[list[float]] = [[] for _ in urls]
    total = clients * len(urls)
    opened = 0
    all_open = asyncio.Event()
    measuring = False
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def one(which: int, index: int) -> None:
            nonlocal opened
            async with http.ws_connect(f"{urls[which]}/ticks?offset={index / clients:.4f}") as ws:
                opened += 1
                if opened == total:
                    all_open.set()
                async for msg in ws:
                    if measuring:
                        latencies[which].append(time.time() * 1000 - json.loads(msg.data)["t"])

        tasks = [asyncio.create_task(one(w, i)) for i in range(clients) for w in range(len(urls))]
        try:
            await asyncio.wait_for(all_open.wait(), 120)
            await asyncio.sleep(2.0)  # every connection past its first, staggered tick
            measuring = True
            await asyncio.sleep(seconds)
        finally:
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception) and not isinstance(r, asyncio.CancelledError)]
        if failed:
            print(f"  {len(failed)} connections failed: {failed[0]!r}", file=sys.stderr)
    return latencies


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def start(command: list[str], line_from_stderr: bool = False) -> tuple[subprocess.Popen[str], str]:
    """Start a process; its first line (stdout, or stderr for ``rtplay proxy``'s banner). The
    rest of its stderr goes to a file, so a chatty process never blocks on a full pipe."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = tempfile.NamedTemporaryFile("w+", prefix="rtplay-bench-", suffix=".log", delete=False)
    LOGS.append(log.name)
    if line_from_stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(log.name) as reader:
                line = reader.readline()
            if line.endswith("\n"):
                return process, line
            time.sleep(0.05)
        raise RuntimeError(f"{command[:4]} printed nothing")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    assert process.stdout is not None
    return process, process.stdout.readline()


#: The processes' logs, reported (with their size) at the end.
LOGS: list[str] = []


async def client_main(args: argparse.Namespace) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    upstream, line = start([sys.executable, __file__, "--upstream"])
    ports = json.loads(line)
    proxies = []
    try:
        urls = {}
        for kind, port in ports.items():
            proxy, banner = start(
                [sys.executable, "-m", "rtplay.cli.main", "proxy", f"http://127.0.0.1:{port}", "--headless",
                 "--duration", "3600", "--api-port", "0", "--name", kind], line_from_stderr=True,
            )
            proxies.append(proxy)
            urls[kind] = (f"http://127.0.0.1:{port}", banner.split(": ", 1)[1].split(" ")[0])
        ws_direct, ws_proxy = urls["ws"]
        sse_direct, sse_proxy = urls["http"]
        direct = await ws_round_trips(ws_direct, args.round_trips)
        proxied = await ws_round_trips(ws_proxy, args.round_trips)
        ratio = statistics.median(proxied) / statistics.median(direct)
        print(f"WS round trip ({args.round_trips} sequential): direct median {statistics.median(direct):.3f} ms "
              f"p99 {quantile(direct, 0.99):.3f} ms; proxy median {statistics.median(proxied):.3f} ms "
              f"p99 {quantile(proxied, 0.99):.3f} ms; ratio {ratio:.2f}x (target <= 2x)")
        rate_direct = await sse_rate(sse_direct, args.seconds)
        rate_proxy = await sse_rate(sse_proxy, args.seconds)
        print(f"SSE events/s ({args.seconds:g} s each): direct {rate_direct:,.0f}; proxy {rate_proxy:,.0f}; "
              f"ratio {rate_proxy / rate_direct:.2f}x (target >= 0.5x)")
        lat_direct, lat_proxy = await crowd_latency([ws_direct, ws_proxy], args.clients, args.crowd_seconds)
        added = quantile(lat_proxy, 0.99) - quantile(lat_direct, 0.99)
        print(f"{args.clients} WS connections via the proxy and {args.clients} direct at 1 msg/s "
              f"({args.crowd_seconds:g} s, {len(lat_proxy)} msgs via proxy): "
              f"one-way p50/p99 direct {quantile(lat_direct, 0.5):.2f}/{quantile(lat_direct, 0.99):.2f} ms, "
              f"proxy {quantile(lat_proxy, 0.5):.2f}/{quantile(lat_proxy, 0.99):.2f} ms; added p99 {added:.2f} ms "
              "(target < 10 ms)")
    finally:
        for process in [*proxies, upstream]:
            process.terminate()
            process.wait(10)
        for name in LOGS:
            with open(name) as log:
                lines = [line for line in log if not line.startswith(("rtplay proxy ", "Toxiproxy API: "))]
            if lines:
                print(f"  (a process logged {len(lines)} more lines: {name})", file=sys.stderr)
            else:
                os.unlink(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--round-trips", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0, help="SSE read time per side")
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--crowd-seconds", type=float, default=8.0)
    args = parser.parse_args()
    from rtplay.runtime import eventloop  # uvloop where installed, as the proxy runs

    eventloop.run(upstream_main() if args.upstream else client_main(args))


if __name__ == "__main__":
    main()
