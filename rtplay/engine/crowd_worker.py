"""A crowd worker process: many clients of one transport, one event loop, aggregated accounting.

Run as ``python -m rtplay.engine.crowd_worker`` by :mod:`rtplay.engine.crowd_pool`. Protocol, one JSON
object per line:

- stdin, first line: ``{"transport", "count", "first", "seed", "policy", "options", "endpoints"}``
- stdout, every :data:`SNAPSHOT_S`: ``{"delta": <CrowdRecorder.drain()>, "cursor_min": N}``
- stdin: ``{"stop": PUBLISHED}`` → the clients stop; stdout: ``{"final": {...}}``; exit.

The clients are the same adapters as the playground's, on the same core; each draws its
jitter from its own RNG seeded ``seed + index``, so a crowd run is repeatable decision by
decision. Crowd clients have no client-side ``offline`` fault (server-side faults reach them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import resource
import sys
from typing import Any

from rtplay.clients import CLIENTS, Endpoints
from rtplay.clients.base import Client
from rtplay.clients.core import run_guarded
from rtplay.model.crowd import CrowdRecorder, final_figures
from rtplay.model.retry_spec import parse_policy

log = logging.getLogger(__name__)

#: How often a worker reports: 5 Hz is smooth enough for a live pane and, at 1,000 clients
#: per worker, a few kilobytes per line.
SNAPSHOT_S = 0.2

#: Clients a worker starts per second at first: the crowd's own first connects are set-up,
#: not the experiment, and a server handed 1,000 handshakes at once times half of them out.
RAMP_PER_S = 500.0

#: How long stopping may take: every client task is cancelled, then its sockets close.
STOP_TIMEOUT_S = 10.0


def endpoints_from(data: dict[str, Any]) -> Endpoints:
    return Endpoints(
        http_url=data["http_url"], quic_host=data["quic_host"], quic_port=int(data["quic_port"]),
        cert_der=bytes.fromhex(data["cert_der"]),
    )


def endpoints_to(endpoints: Endpoints) -> dict[str, Any]:
    return {
        "http_url": endpoints.http_url, "quic_host": endpoints.quic_host, "quic_port": endpoints.quic_port,
        "cert_der": endpoints.cert_der.hex(),
    }


def make_clients(config: dict[str, Any], recorder: CrowdRecorder) -> list[Client]:
    spec = parse_policy(config["policy"]) if config.get("policy") else None
    endpoints = endpoints_from(config["endpoints"])
    clients = []
    for i in range(int(config["count"])):
        options: dict[str, Any] = dict(config.get("options") or {})
        options["rng"] = random.Random(int(config["seed"]) + int(config["first"]) + i)
        if spec is not None:
            options["retry"] = spec
        clients.append(CLIENTS[config["transport"]](endpoints, recorder.emit_for(i), options))
    return clients


def write(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def run_crowd(config: dict[str, Any], commands: asyncio.StreamReader) -> None:
    recorder = CrowdRecorder(int(config["count"]))
    clients = make_clients(config, recorder)
    tasks = [
        asyncio.create_task(run_guarded(c, i / RAMP_PER_S), name=f"crowd-{config['transport']}-{i}")
        for i, c in enumerate(clients)
    ]
    stop = asyncio.create_task(commands.readline())
    try:
        while not stop.done():
            await asyncio.wait({stop}, timeout=SNAPSHOT_S)
            cursor_min = min(c.cursor for c in clients)
            write({"delta": recorder.drain(), "cursor_min": cursor_min})
        line = stop.result()
        published = int(json.loads(line)["stop"]) if line.strip() else 0
    finally:
        stop.cancel()
        for task in tasks:
            task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), STOP_TIMEOUT_S)
    entries = [c.report(published) for c in clients]
    policy = clients[0].retry.describe() if clients and hasattr(clients[0], "retry") else "-"
    write({"delta": recorder.drain(), "cursor_min": min(c.cursor for c in clients)})
    usage = resource.getrusage(resource.RUSAGE_SELF)
    final = final_figures(entries, policy) | {
        "cpu_s": usage.ru_utime + usage.ru_stime, "max_rss_kb": usage.ru_maxrss, "clients": len(clients),
    }
    write({"final": final})


async def main_async() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = json.loads(await reader.readline())
    await run_crowd(config, reader)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
