"""Load probes against ``rtplay serve``: does a hostile peer take the playground down?

    unshare -n -- bash -c 'ip link set lo up && ulimit -n 65536 && python benchmarks/hostile.py'
    python benchmarks/hostile.py --probes quic_flood,slowloris --rate 500

Starts ``rtplay serve`` (its own process), follows it with one healthy WebSocket client and,
per probe, prints the server's RSS and the healthy client's latency p50/p99 before, during
and after the probe, plus what became of the attackers. Every probe runs in a child process
(so the attacker's work does not delay the healthy client), loopback only, bounded in count
and time:

- quic_flood      QUIC Initials with random connection ids on the UDP port
- slowloris       sockets trickling a request head that never ends, plus silent ones
- slow_consumers  SSE clients that never read, at the run's publish rate
- burst           new SSE subscribers with no cursor, each replaying the whole buffer
- idle            many idle TCP sockets that never send a byte
- fd_exhaustion   idle sockets on the control port and body-less request heads, beyond the
                  server's descriptor limit (the server runs with ``ulimit -n`` SERVER_FD_LIMIT);
                  then can a fresh client reach both listeners?
- cont_flood      WebSocket connections sending empty continuation frames as fast as they can
- rtc_half_open   WebRTC offers never finished, 19 a second, while a client offers once a second
- slow_reader     clients asking /poll?since=0 (the whole buffer) and never reading
                  (``--slow-readers N``, default 300; the issue's figure is 1,000)
- subscribers     SSE and WebSocket subscribers, half each, that sit on their streams
                  (``--subscribers N``, default 6,000; run it at ``--rate 1``, as the
                  capacity target says; the server's descriptor limit grows to fit N), and
                  how long each publish's fan-out held the server's loop while they sat: the
                  median and max of its largest loop-lag bins, one per second held (the healthy
                  client's latency depends on where it falls in the fan-out's order, this not)
- wt_hoard        40 QUIC connections x 8 WebTransport sessions that never grant flow-control
                  credit (benchmarks/wt_hoard.py), held HOLD_S, then closed
- held_longpolls  long-pollers, each holding ``GET /longpoll?since=<its cursor>`` and asking
                  again at once on every answer (benchmarks/held_longpolls.py; ``--held N``,
                  default 5,000; run it at ``--rate 1``): their own wave latency (publish ->
                  answer read) p50/p99, the server's KB per held long-poll and its loop lag

Each row also gives the 1-minute load average at the start and the end of the probe: the
machine is shared, and a latency figure means little without it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import aiohttp

HOST = "127.0.0.1"
PROBES = (
    "quic_flood", "slowloris", "slow_consumers", "burst", "idle",
    "fd_exhaustion", "cont_flood", "rtc_half_open", "slow_reader", "subscribers", "wt_hoard",
    "held_longpolls",
)

#: Bounds of each probe: counts and seconds (the issue's own figures, scaled for CI machines).
QUIC_FLOOD_PACKETS = 50_000
QUIC_FLOOD_PER_S = 10_000
SLOWLORIS_SOCKETS = 200
SILENT_SOCKETS = 200
SLOW_CONSUMERS = 50
BURST_SUBSCRIBERS = 100
BURST_TIMEOUT_S = 30.0
IDLE_SOCKETS = 10_000
HOLD_S = 15.0
"""How long the socket probes hold on: longer than the server's 10 s header/idle timeout."""
PHASE_S = 3.0
"""Length of the before phase."""
AFTER_S = 6.0
"""Length of the after phase: the server gives memory back about a second after a burst ends."""
SETTLED_S = 16.0
"""When the slow_reader and subscribers rows read RSS once more ("settled", seconds after the
attackers left): by then the replay buffer has turned over (10 s at 1000 msg/s: the envelopes
published during the burst are gone) and the server's follow-up trim has run."""
SETTLED_PROBES = ("slow_reader", "subscribers")
SERVER_FD_LIMIT = 8192
"""The server's descriptor limit in this benchmark: fd_exhaustion opens more sockets than it."""
FD_SOCKETS = 9000
SUBSCRIBER_FD_SPARE = 2048
"""Descriptors the server gets beyond ``--subscribers`` (its cap keeps 256 of them in reserve)."""
FD_HEADS = 300
CONT_FLOOD_CONNECTIONS = 4
HALF_OPEN_PER_S = 19
SLOW_READERS = 300
SUBSCRIBERS = 6000
HELD_LONGPOLLS = 5000


# --- the attackers (run in a child process) ------------------------------------------------


def initial_packet() -> bytes:
    """A 1200-byte QUIC v1 Initial (RFC 9000 §17.2.2) with random connection ids and garbage
    (tests/hostile/quic_packets.py has the same: this script imports nothing of the tests)."""
    head = bytes([0xC3]) + (1).to_bytes(4, "big") + bytes([8]) + os.urandom(8) + bytes([8]) + os.urandom(8) + b"\x00"
    rest = 1200 - len(head) - 2
    return head + (0x4000 | rest).to_bytes(2, "big") + os.urandom(rest)


async def quic_flood(quic_port: int) -> str:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sent = 0
    step = QUIC_FLOOD_PER_S // 100
    start = time.monotonic()
    while sent < QUIC_FLOOD_PACKETS:
        for _ in range(step):
            try:
                sock.sendto(initial_packet(), (HOST, quic_port))
                sent += 1
            except BlockingIOError:
                break
        await asyncio.sleep(max(0.0, start + sent / QUIC_FLOOD_PER_S - time.monotonic()))
    sock.close()
    return f"{sent} Initials in {time.monotonic() - start:.1f} s"


def closed_by_server(sock: socket.socket) -> bool:
    """Did the server close ``sock``? (Reads and discards whatever is pending.)"""
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(1 << 16):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def tcp(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect((HOST, port))
    return sock


async def slowloris(http_port: int) -> str:
    trickling = [tcp(http_port) for _ in range(SLOWLORIS_SOCKETS)]
    silent = [tcp(http_port) for _ in range(SILENT_SOCKETS)]
    for sock in trickling:
        sock.sendall(b"GET /poll HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    end = time.monotonic() + HOLD_S
    while time.monotonic() < end:
        for sock in trickling:
            try:
                sock.send(b"a")
            except OSError:
                pass
        await asyncio.sleep(1.0)
    closed = sum(map(closed_by_server, trickling + silent))
    for sock in trickling + silent:
        sock.close()
    return f"{closed}/{len(trickling) + len(silent)} closed by the server"


async def slow_consumers(http_port: int) -> str:
    socks = [tcp(http_port, rcvbuf=4096) for _ in range(SLOW_CONSUMERS)]
    for sock in socks:
        sock.sendall(b"GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await asyncio.sleep(HOLD_S)
    closed = sum(map(closed_by_server, socks))
    for sock in socks:
        sock.close()
    return f"{closed}/{len(socks)} cut by the server"


async def burst(http_port: int) -> str:
    async def subscriber(http: aiohttp.ClientSession) -> float | None:
        """Seconds until this subscriber had the whole buffer (10k events); None if never."""
        events = 0
        try:
            async with asyncio.timeout(BURST_TIMEOUT_S), http.get(f"http://{HOST}:{http_port}/sse") as response:
                async for chunk in response.content.iter_any():
                    events += chunk.count(b"\nid: ") + chunk.startswith(b"id: ")
                    if events >= 10_000:
                        return time.monotonic() - start
        except (TimeoutError, aiohttp.ClientError):
            pass
        return None

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        start = time.monotonic()
        took = await asyncio.gather(*(subscriber(http) for _ in range(BURST_SUBSCRIBERS)))
    done = [t for t in took if t is not None]
    slowest = f", the last after {max(done):.1f} s" if done else ""
    return f"{len(done)}/{BURST_SUBSCRIBERS} got the 10k-message replay{slowest}"


async def idle(http_port: int) -> str:
    socks = []
    for _ in range(IDLE_SOCKETS):
        try:
            socks.append(tcp(http_port))
        except OSError as exc:
            return f"opened {len(socks)} sockets, then: {exc.strerror} (raise ulimit -n)"
    await asyncio.sleep(HOLD_S)
    closed = sum(map(closed_by_server, socks))
    for sock in socks:
        sock.close()
    return f"{closed}/{len(socks)} closed by the server"


def fresh_request(port: int, path: str, timeout: float = 3.0) -> str:
    """The status line a brand-new connection gets for ``GET path`` (or why it got none)."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nConnection: close\r\n\r\n".encode())
            return sock.recv(64).split(b"\r\n")[0].decode(errors="replace") or "closed"
    except OSError as exc:
        return type(exc).__name__


async def fd_exhaustion(http_port: int, control_port: int) -> str:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    socks: list[socket.socket] = []
    head = "POST /control/faults HTTP/1.1\r\nHost: {h}:{p}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    try:
        for i in range(FD_HEADS):  # request heads whose body never comes, on both listeners
            port = control_port if i % 2 else http_port
            sock = tcp(port)
            path = "/control/faults" if port == control_port else "/rtc/offer"
            sock.sendall(head.format(h=HOST, p=port).replace("/control/faults", path).encode())
            socks.append(sock)
        for _ in range(FD_SOCKETS):
            socks.append(tcp(control_port))
    except OSError as exc:
        opened = f"opened {len(socks)}, then {exc.strerror}"
    else:
        opened = f"opened {len(socks)}"
    await asyncio.sleep(1.0)
    during = f"fresh http: {fresh_request(http_port, '/poll?since=0')!r}, control: {fresh_request(control_port, '/control/rate')!r}"
    await asyncio.sleep(HOLD_S)
    closed = sum(map(closed_by_server, socks))
    for sock in socks:
        sock.close()
    return f"{opened}; {during}; {closed}/{len(socks)} closed by the server"


async def cont_flood(http_port: int) -> str:
    """Empty continuation frames (masked, RFC 6455 §5.2) after an unfinished text frame."""
    frame_start, empty = bytes([0x01, 0x81]) + b"\0\0\0\0x", bytes([0x00, 0x80]) + b"\0\0\0\0"
    burst = empty * 4096
    socks = []
    for _ in range(CONT_FLOOD_CONNECTIONS):
        sock = tcp(http_port)
        sock.sendall(f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
        sock.recv(4096)
        sock.sendall(frame_start)
        sock.setblocking(False)
        socks.append(sock)
    closed: set[int] = set()
    end = time.monotonic() + HOLD_S
    while time.monotonic() < end and len(closed) < len(socks):
        for i, sock in enumerate(socks):
            if i in closed:
                continue
            try:
                sock.send(burst)
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
        await asyncio.sleep(0.001)
    closed |= {i for i, sock in enumerate(socks) if closed_by_server(sock)}
    for sock in socks:
        sock.close()
    return f"{len(closed)}/{len(socks)} flooders closed by the server"


async def rtc_half_open(http_port: int) -> str:
    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.createDataChannel("reliable")
    pc.createDataChannel("unreliable", ordered=False, maxRetransmits=0)
    await pc.setLocalDescription(await pc.createOffer())
    offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
    await pc.close()
    url = f"http://{HOST}:{http_port}/rtc/offer"
    refused = tried = 0
    async with aiohttp.ClientSession() as http:
        async def post() -> int:
            async with http.post(url, json=offer) as response:
                return response.status

        end = time.monotonic() + HOLD_S
        flood: set[asyncio.Task[int]] = set()
        while time.monotonic() < end:
            for _ in range(HALF_OPEN_PER_S):
                flood.add(asyncio.create_task(post()))
                await asyncio.sleep(1 / HALF_OPEN_PER_S / 2)
            tried += 1
            refused += await post() == 503  # the "real" client, once a second
        await asyncio.gather(*flood, return_exceptions=True)
    return f"a client offering once a second got 503 on {refused} of {tried} tries"


async def slow_reader(http_port: int, count: int) -> str:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    socks = []
    for _ in range(count):
        sock = tcp(http_port, rcvbuf=4096)
        sock.sendall(f"GET /poll?since=0 HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
        socks.append(sock)
    await asyncio.sleep(HOLD_S)
    closed = sum(map(closed_by_server, socks))
    for sock in socks:
        sock.close()
    return f"{closed}/{len(socks)} non-readers cut by the server"


#: A client's unsolicited pong (RFC 6455 §5.5.3: a unidirectional heartbeat), masked as every
#: client frame must be: the server hears life from the WebSocket subscribers, which would
#: otherwise be dropped as dead peers by its heartbeat (10 s) long before the probe ends.
CLIENT_PONG = bytes([0x8A, 0x80]) + b"\0\0\0\0"
KEEPALIVE_S = 3.0


def keep_alive(ws_socks: list[socket.socket]) -> None:
    for sock in ws_socks:
        try:
            sock.send(CLIENT_PONG)
        except OSError:
            pass


async def fan_out_lag(control_port: int, seconds: float) -> str:
    """The server's loop lag over the last ``seconds``: at ``--rate 1`` its largest bin of each
    second is that second's publish, fanned out to every subscriber in one turn of the loop."""
    async with aiohttp.ClientSession() as http, http.get(
        f"http://{HOST}:{control_port}/control/status?load_s={seconds:g}"
    ) as response:
        status = await response.json()
    top = sorted((v for _, v in status["load"]["loop_lag_ms"]), reverse=True)[: max(1, int(seconds))]
    return f"fan-out (loop lag) median/max {statistics.median(top):.0f}/{top[0]:.0f} ms" if top else "no loop lag figures"


async def subscribers(http_port: int, control_port: int, count: int) -> str:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    socks: list[socket.socket] = []
    ws_socks: list[socket.socket] = []
    ws = (f"GET /ws HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    sse = f"GET /sse HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    start = last_alive = time.monotonic()
    try:
        for i in range(count):
            sock = tcp(http_port)
            sock.sendall(ws if i % 2 else sse)
            socks.append(sock)
            if i % 2:
                ws_socks.append(sock)
            if i % 200 == 199:
                if time.monotonic() - last_alive > KEEPALIVE_S:
                    keep_alive(ws_socks)
                    last_alive = time.monotonic()
                await asyncio.sleep(0)
    except OSError as exc:
        return f"opened {len(socks)}, then {exc.strerror}"
    took = time.monotonic() - start
    end = time.monotonic() + HOLD_S
    while time.monotonic() < end:  # read what comes, so nobody is a slow consumer
        for sock in socks:
            closed_by_server(sock)
        if time.monotonic() - last_alive > KEEPALIVE_S:
            keep_alive(ws_socks)
            last_alive = time.monotonic()
        await asyncio.sleep(0.5)
    closed = sum(map(closed_by_server, socks))
    fan_out = await fan_out_lag(control_port, HOLD_S - 1)
    for sock in socks:
        sock.close()
    return f"{len(socks)} subscribed in {took:.1f} s; {closed} closed by the server; {fan_out}"


async def held_longpolls(http_port: int, control_port: int, count: int) -> str:
    from held_longpolls import held_longpolls as hold  # benchmarks/ is this script's directory

    return await hold(http_port, control_port, count, HOLD_S)


async def wt_hoard(quic_port: int) -> str:
    from wt_hoard import wt_hoard as hoard  # benchmarks/ is this script's directory

    return await hoard(quic_port, HOLD_S)


def attack(name: str, http_port: int, quic_port: int, control_port: int, count: int) -> None:
    probe = {"quic_flood": lambda: quic_flood(quic_port), "slowloris": lambda: slowloris(http_port),
             "slow_consumers": lambda: slow_consumers(http_port), "burst": lambda: burst(http_port),
             "idle": lambda: idle(http_port), "fd_exhaustion": lambda: fd_exhaustion(http_port, control_port),
             "cont_flood": lambda: cont_flood(http_port), "rtc_half_open": lambda: rtc_half_open(http_port),
             "slow_reader": lambda: slow_reader(http_port, count), "subscribers": lambda: subscribers(http_port, control_port, count),
             "wt_hoard": lambda: wt_hoard(quic_port),
             "held_longpolls": lambda: held_longpolls(http_port, control_port, count)}[name]
    print(asyncio.run(probe()), flush=True)


# --- the server, the healthy client and the phases (this process) --------------------------


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)

    def cell(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return "no messages".rjust(17)
        p50, p99 = statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return f"{p50:7.1f} / {p99:7.1f}"

    def rss(self) -> str:
        """The phase's highest RSS."""
        return f"{max(self.rss_mb):5.0f}" if self.rss_mb else "    -"

    def final_rss(self) -> str:
        """The RSS at the end of the phase (what memory came back)."""
        return f"{self.rss_mb[-1]:5.0f}" if self.rss_mb else "    -"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Healthy:
    """One WebSocket client following the stream; every arrival goes to the current phase."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.phase = Phase()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.ws_connect(self.url, heartbeat=5) as ws:
                        async for msg in ws:
                            envelope = json.loads(msg.data)
                            if "t" in envelope:
                                self.phase.latencies.append(time.time() * 1000 - envelope["t"])
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.2)


async def sample(pid: int, healthy: Healthy, until: asyncio.Future[object] | float) -> Phase:
    phase = healthy.phase = Phase()
    end = until if isinstance(until, float) else None
    while (end is None and not until.done()) or (end is not None and time.monotonic() < end):  # type: ignore[union-attr]
        phase.rss_mb.append(rss_mb(pid))
        await asyncio.sleep(0.2)
    return phase


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}"


async def run_probe(
    name: str, server: subprocess.Popen[str], ports: tuple[int, int, int], healthy: Healthy, count: int
) -> list[str]:
    load = load_average()
    before = await sample(server.pid, healthy, time.monotonic() + PHASE_S)
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--attack", name, "--http-port", str(ports[0]), "--quic-port", str(ports[1]),
        "--control-port", str(ports[2]), "--count", str(count), stdout=asyncio.subprocess.PIPE,
    )
    outcome_task = asyncio.ensure_future(child.communicate())
    during = await sample(server.pid, healthy, outcome_task)
    outcome = (await outcome_task)[0].decode().strip() or f"attacker exited {child.returncode}"
    after = await sample(server.pid, healthy, time.monotonic() + AFTER_S)
    settled = Phase()
    if name in SETTLED_PROBES:
        settled = await sample(server.pid, healthy, time.monotonic() + SETTLED_S - AFTER_S)
    load += "-" + load_average()
    return [name, load, before.rss(), during.rss(), after.final_rss(), settled.final_rss(), before.cell(), during.cell(),
            after.cell(), outcome]


def start_server(rate: float, fd_limit: int) -> tuple[subprocess.Popen[str], tuple[int, int, int]]:
    server = subprocess.Popen(
        [sys.executable, "-m", "rtplay.cli.main", "serve", "--rate", str(rate)], stdout=subprocess.PIPE, text=True,
    )
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (fd_limit, fd_limit))
    assert server.stdout is not None
    http_port = quic_port = control_port = 0
    for line in server.stdout:
        if m := re.search(r"http://127\.0\.0\.1:(\d+)/control/status", line):  # `serve` prints no READY line
            control_port = int(m.group(1))
        if m := re.search(r"http://127\.0\.0\.1:(\d+)/poll", line):
            http_port = int(m.group(1))
        if m := re.search(r"HTTP/3 on UDP (\d+)", line):
            quic_port = int(m.group(1))
        if "Ctrl-C" in line:
            break
    return server, (http_port, quic_port, control_port)


async def main(args: argparse.Namespace) -> None:
    fd_limit = SERVER_FD_LIMIT
    if "subscribers" in args.probes:
        fd_limit = max(fd_limit, args.subscribers + SUBSCRIBER_FD_SPARE)
    if "held_longpolls" in args.probes:
        fd_limit = max(fd_limit, args.held + SUBSCRIBER_FD_SPARE)
    server, ports = start_server(args.rate, fd_limit)
    counts = {"subscribers": args.subscribers, "slow_reader": args.slow_readers, "held_longpolls": args.held}
    healthy = Healthy(f"ws://{HOST}:{ports[0]}/ws")
    healthy.task = asyncio.create_task(healthy.run())
    rows = []
    try:
        await asyncio.sleep(12 if {"burst", "slow_reader"} & set(args.probes) else 1)  # let the replay buffer fill
        for name in args.probes:
            rows.append(await run_probe(name, server, ports, healthy, counts.get(name, 0)))
            print(f"  {name}: {rows[-1][-1]}", file=sys.stderr, flush=True)
    finally:
        healthy.task.cancel()
        await asyncio.gather(healthy.task, return_exceptions=True)
        server.terminate()
        server.wait(10)
    print(f"rtplay serve at {args.rate:g} msg/s; RSS in MB (before, during: the phase's max; after: at its end,"
          f" {AFTER_S:g} s after the attackers left; settled: {SETTLED_S:g} s after, {', '.join(SETTLED_PROBES)} only);"
          " healthy WS client latency ms p50 / p99; load: 1-min load average")
    head = ["probe", "load", "RSS bef", "during", "after", "settled", "before p50/p99", "during p50/p99", "after p50/p99",
            "attackers"]
    widths = [15, 9, 7, 6, 5, 7, 17, 17, 17, 0]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probes", type=lambda s: s.split(","), default=list(PROBES))
    parser.add_argument("--rate", type=float, default=1000.0, help="publish rate (msg/s), default 1000")
    parser.add_argument("--subscribers", type=int, default=SUBSCRIBERS, help=f"subscribers probe: how many (default {SUBSCRIBERS})")
    parser.add_argument("--slow-readers", type=int, default=SLOW_READERS, help=f"slow_reader probe: how many (default {SLOW_READERS})")
    parser.add_argument("--held", type=int, default=HELD_LONGPOLLS, help=f"held_longpolls probe: how many (default {HELD_LONGPOLLS})")
    parser.add_argument("--attack", choices=PROBES, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--http-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--quic-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--control-port", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse()
    if arguments.attack:
        attack(arguments.attack, arguments.http_port, arguments.quic_port, arguments.control_port, arguments.count)
    else:
        asyncio.run(main(arguments))
