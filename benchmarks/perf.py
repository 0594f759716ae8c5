"""rtplay against the raw libraries, in one run on this machine: ratios, not absolute figures.

    unshare -n -- bash -c 'ip link set lo up && python benchmarks/perf.py'
    RTPLAY_LOOP=asyncio python benchmarks/perf.py --quick       # the fallback loop, shorter

P1  ws round trip through rtplay's server / a bare aiohttp echo            target <= 1.2x
P2  highest lossless rate of each transport alone / a raw one-way blast    ws, sse >= 0.5x;
    of the same library (aiohttp WS, aiohttp SSE read by httpx, aiortc     rtc >= 0.75x;
    data channel, aioquic stream)                                          wt >= 5000 msg/s
CPU per delivered message, each transport alone at 1000 msg/s (server + client processes)
P3  all six at 1000 msg/s with the playground live (Textual ``run_test``): UI refreshes/s
    (>= 10), client loop lag p99 (< 50 ms), losses (0), rtc reliable p99 (< 100 ms)
P5  launch to all six delivering (< 1.5 s), against the raw libraries' setup

Every probe is bounded in messages and seconds; rtplay and raw figures are interleaved so
that a busy machine weighs on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import raw  # noqa: E402
from rtplay.engine.session import Session, SessionConfig, available_transports  # noqa: E402
from rtplay.protocol.options import MAX_RATE, ServerOptions  # noqa: E402
from rtplay.runtime import eventloop  # noqa: E402
from servers.runner import Server, ServerConfig  # noqa: E402

if TYPE_CHECKING:
    from textual.pilot import Pilot

    from rtplay.tui.main import MainScreen

log = logging.getLogger("perf")


@dataclass
class Budget:
    """How long each probe may run; ``--quick`` halves the lot."""

    round_trips: int = 2000
    rounds: int = 3
    blast: int = 20_000
    rtc_blast: int = 3000
    step_s: float = 2.0
    cpu_s: float = 3.0
    live_s: float = 10.0


# --- P1 ------------------------------------------------------------------------------------


async def rtplay_round_trip(count: int) -> float:
    """Mean µs of a ``{"ping"}``/``{"pong"}`` through rtplay's /ws (publishing paused)."""
    server = Server(ServerConfig(rate=0))
    await server.start()
    try:
        return await raw.round_trips("ws" + server.http_url.removeprefix("http") + "/ws?since=0", count)
    finally:
        await server.stop()


#: Interleaved P1 rounds. A round trip is tens of µs, and on a shared VM one round of the
#: echo alone moved from 25 to 68 µs between runs: each side's quickest round is its least
#: disturbed, and the ratio of those is what repeats.
P1_ROUNDS = 7


async def p1(budget: Budget) -> None:
    raws, ours = [], []
    for _ in range(P1_ROUNDS):
        raws.append(await raw.ws_echo_round_trip(budget.round_trips))
        ours.append(await rtplay_round_trip(budget.round_trips))
    r, o = min(raws), min(ours)
    verdict(f"P1 ws round trip, quickest of {P1_ROUNDS} rounds each: aiohttp echo {r:.1f} µs (median "
            f"{statistics.median(raws):.1f}), rtplay {o:.1f} µs (median {statistics.median(ours):.1f})", o / r, "<=", 1.2)


# --- P2 and CPU ------------------------------------------------------------------------------


def cpu_seconds(session: Session) -> float:
    """CPU used so far by this process and, when the session spawned one, its server process."""
    total = time.process_time()
    if session.process is not None:
        with open(f"/proc/{session.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


async def run_alone(transport: str, rate: float, seconds: float) -> dict[str, Any]:
    """One session of ``transport`` alone (the server its own process, as in ``rtplay``); its report."""
    session = Session(SessionConfig(transports=[transport], server=ServerOptions(rate=rate)))
    await session.start()
    try:
        await asyncio.sleep(seconds)
        await session.settle(3.0)
        return session.report()
    finally:
        await session.stop()


def reliable(entry: dict[str, Any]) -> dict[str, Any]:
    """The report entry of a transport's resumable channel (the first one)."""
    channels = entry.get("channels")
    return next(iter(channels.values())) if channels else entry


def shortfall(report: dict[str, Any], rate: float) -> str | None:
    """Why ``report`` is not a lossless run at ``rate``; None when it is one.

    The achieved rate is what was published over the session's publishing time, which ends
    when the client process hears that publishing stopped: a client that fell behind hears
    it late, so falling short of the rate here usually means the client did not keep up.
    """
    (entry,) = report["transports"].values()
    main = reliable(entry)
    achieved = report["published"] / max(report["duration_s"], 1e-9)
    late = f"latency p50 {main['latency_ms']['p50']} ms"
    if entry.get("cut_too_slow"):
        return f"cut as too slow ({late})"
    for what in ("lost", "lost_to_reset", "duplicates"):
        if main[what]:
            return f"{main[what]} {what}"
    if main["delivered"] != report["published"]:
        return f"delivered {main['delivered']} of {report['published']} ({late})"
    if achieved < 0.95 * rate:
        return f"achieved {achieved / rate:.2f}x of the rate ({late}: the client fell behind)"
    return None


async def highest_lossless(transport: str, rates: list[float], seconds: float) -> tuple[float, str]:
    """Climb ``rates``: the last one ``transport`` carried with nothing lost, and what stopped
    it on the next rung ("" at the top of the ladder)."""
    best = 0.0
    for rate in (r for r in rates if r <= MAX_RATE):  # the server refuses faster schedules
        report = await run_alone(transport, rate, seconds)
        why = shortfall(report, rate)
        if why is not None:
            return best, f"{rate:,.0f} msg/s: {why}"
        best = rate
    return best, ""


LADDERS = {
    "ws": [5000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 60_000, 80_000, 100_000],
    "sse": [5000, 10_000, 15_000, 20_000, 25_000, 30_000, 40_000, 60_000, 80_000, 100_000],
    "rtc": [500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000],
    "wt": [2500, 5000, 7500, 10_000, 15_000, 20_000, 25_000, 30_000],
}


async def p2(budget: Budget) -> None:
    probes = {
        "ws": lambda: raw.ws_blast(budget.blast),
        "sse": lambda: raw.sse_blast(budget.blast),
        "rtc": lambda: raw.rtc_blast(budget.rtc_blast),
        "wt": lambda: raw.quic_blast(budget.blast),
    }
    targets = {"ws": 0.5, "sse": 0.5, "rtc": 0.75}
    for name, probe in probes.items():
        blast = await probe()
        ours, stopped = await highest_lossless(name, LADDERS[name], budget.step_s)
        ceiling = f" (stopped at {stopped})" if stopped else " (the top of the ladder)"
        line = f"P2 {name:<4} lossless {ours:,.0f} msg/s{ceiling}, raw blast {blast.rate:,.0f} msg/s"
        if name in targets:
            verdict(line, ours / blast.rate, ">=", targets[name])
        else:
            verdict(line + f", ratio {ours / blast.rate:.2f}x; target >= 5,000 msg/s", ours, ">=", 5000, unit="")


#: Seconds a session runs before its CPU is counted: start-up (certificate, TLS contexts,
#: WebRTC's handshake) is not a per-message cost. Counting also waits for the client to be
#: within :data:`CAUGHT_UP` messages of the publisher (at most :data:`MAX_WARM_UP_S`).
WARM_UP_S = 1.0
MAX_WARM_UP_S = 10.0
CAUGHT_UP = 50


async def steady_cpu(transport: str, rate: float, seconds: float) -> tuple[float, int]:
    """CPU seconds (server + client, this process) and messages delivered in a steady window."""
    session = Session(SessionConfig(transports=[transport], server=ServerOptions(rate=rate)))
    await session.start()
    try:
        await asyncio.sleep(WARM_UP_S)
        client = session.clients[transport]
        tracker = client.stats[client.channels[0]].tracker
        deadline = time.monotonic() + MAX_WARM_UP_S
        while session.published - tracker.highest > CAUGHT_UP and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu, delivered = cpu_seconds(session), tracker.delivered
        await asyncio.sleep(seconds)
        return cpu_seconds(session) - cpu, tracker.delivered - delivered
    finally:
        await session.stop()


async def cpu_per_message(budget: Budget) -> None:
    for name in available_transports():
        cpu, delivered = await steady_cpu(name, 1000, budget.cpu_s)
        per = cpu / max(delivered, 1) * 1e6
        print(f"CPU {name:<9} {per:6.0f} µs per delivered message, {cpu / budget.cpu_s:4.0%} of a core "
              f"at 1000 msg/s ({delivered} delivered in {budget.cpu_s:g} s after {WARM_UP_S:g} s)", flush=True)


# --- P3 --------------------------------------------------------------------------------------


async def next_frame(screen: MainScreen, pilot: Pilot[Any]) -> tuple[int, float]:
    """Wait for the screen's next frame: its count and when it was seen (within 5 ms)."""
    shown = screen.frames_shown
    while screen.frames_shown == shown:
        await pilot.pause(0.005)
    return screen.frames_shown, time.monotonic()


async def caught_up(session: Session) -> None:
    """Until every client's first channel has delivered and is within :data:`CAUGHT_UP` of the publisher
    (at most :data:`MAX_WARM_UP_S`)."""
    deadline = time.monotonic() + MAX_WARM_UP_S
    while time.monotonic() < deadline:
        trackers = [c.stats[c.channels[0]].tracker for c in session.clients.values()]
        if all(t.delivered for t in trackers) and max(session.published - t.highest for t in trackers) <= CAUGHT_UP:
            return
        await asyncio.sleep(0.05)


async def p3(budget: Budget) -> None:
    from rtplay.tui.app import RtplayApp
    from rtplay.tui.backend import SessionBackend
    from rtplay.tui.main import TICK_HZ

    session = Session(SessionConfig(server=ServerOptions(rate=1000)))
    app = RtplayApp(backend=SessionBackend(session), freeze_heap=True)  # as `rtplay` runs it
    screen = app.main_screen
    async with app.run_test(size=(200, 60)) as pilot:
        while app.started_in is None:
            await pilot.pause(0.05)
        await caught_up(session)
        warm = session.report()  # start-up, rtc's replay of what it missed while connecting included
        session.reset_counters()  # the playground's `C`: latency from here is steady state
        # Frames counted between two frames (a window whose edges fall between frames would
        # read a perfect 10 Hz timer as 9.9/s).
        first, begin = await next_frame(screen, pilot)
        await asyncio.sleep(budget.live_s)
        last, end = await next_frame(screen, pilot)
        frames, span = last - first, end - begin
        shown = frames / span
        await session.settle(5.0)
        report = session.report()
    lag = report["health"]["client_loop_lag_ms"]
    losses = {
        name: tuple(
            sum(m[k] for m in (reliable(warm["transports"][name]), reliable(e))) for k in ("lost", "lost_to_reset")
        ) + (e.get("cut_too_slow", 0),)
        for name, e in report["transports"].items()
    }
    rtc_p99 = reliable(report["transports"]["rtc"])["latency_ms"]["p99"] if "rtc" in report["transports"] else None
    warm_p99 = reliable(warm["transports"]["rtc"])["latency_ms"]["p99"] if "rtc" in warm["transports"] else None
    print(f"P3 all six at 1000 msg/s, playground live for {budget.live_s:g} s after every client caught up "
          f"(counters reset then; rtc reliable p99 until then {warm_p99} ms): published {report['published']}")
    # The frame timer runs at TICK_HZ = 10: ">= 10/s" means every frame it was due shown
    # (a rate from float timestamps reads 9.9995/s for a perfect run).
    due = max(1, round(span * TICK_HZ))
    verdict(f"P3 UI refreshes, {frames} of the {TICK_HZ} Hz timer's {due} frames ({shown:.2f}/s)",
            TICK_HZ * min(1.0, frames / due), ">=", 10, unit="/s")
    verdict("P3 client loop lag p99", lag["p99"] or 0.0, "<", 50, unit=" ms")
    verdict("P3 rtc reliable p99", rtc_p99 or 0.0, "<", 100, unit=" ms")
    lost = sum(a + b + c for a, b, c in losses.values())
    verdict(f"P3 lost/reset/cut on reliable channels {losses}", lost, "<=", 0, unit="")
    print(f"P3 health {json.dumps(report['health'])}", flush=True)


# --- P5 --------------------------------------------------------------------------------------


@dataclass
class Launch:
    """One launch's stages, in seconds since ``Session.start()`` was called."""

    ready: float
    """The server process printed its ready line."""
    started: float
    """``start()`` returned: every client started, publishing set."""
    first: dict[str, float]
    """Each transport's first delivered message."""

    @property
    def total(self) -> float:
        return max(self.first.values(), default=float("inf"))


async def launch_rtplay() -> Launch:
    began = time.perf_counter()
    session = Session(SessionConfig(server=ServerOptions(rate=100)))
    await session.start()
    started = time.perf_counter() - began
    assert session.process is not None and session.process.ready_at is not None
    first: dict[str, float] = {}
    try:
        while len(first) < len(session.clients):
            now = time.perf_counter() - began
            if now > raw.PROBE_TIMEOUT_S:
                first.update({name: float("inf") for name in session.clients if name not in first})
                break
            for name, client in session.clients.items():
                if name not in first and reliable(client.report(0))["delivered"] > 0:
                    first[name] = now
            await asyncio.sleep(0.005)
        return Launch(session.process.ready_at - began, started, first)
    finally:
        await session.stop()


async def p5(budget: Budget) -> None:
    raws: list[float] = []
    ours: list[Launch] = []
    for _ in range(budget.rounds):
        began = time.perf_counter()
        await asyncio.gather(raw.ws_blast(10), raw.sse_blast(10), raw.rtc_blast(10), raw.quic_blast(10))
        raws.append(time.perf_counter() - began)
        ours.append(await launch_rtplay())
    median = statistics.median
    r, o = median(raws), median(launch.total for launch in ours)
    names = list(ours[0].first)
    stages = ", ".join(f"{n} {median(launch.first[n] for launch in ours):.2f}" for n in names)
    print(f"P5 stages (median s since Session.start()): server ready {median(x.ready for x in ours):.2f}, "
          f"start() returned {median(x.started for x in ours):.2f}; first message: {stages}", flush=True)
    verdict(f"P5 launch to all delivering: raw libraries {r:.2f} s (ratio {o / r:.2f}x), rtplay", o, "<", 1.5, unit=" s")


# --- output ----------------------------------------------------------------------------------


def verdict(label: str, value: float, op: str, target: float, unit: str = "x") -> None:
    ok = {"<=": value <= target, ">=": value >= target, "<": value < target}[op]
    shown = f"{value:.2f}{unit}" if unit == "x" else f"{value:,.1f}{unit}"
    print(f"{label}: {shown}  (target {op} {target:g}{unit})  {'met' if ok else 'MISSED'}", flush=True)


PARTS = {"p1": p1, "p2": p2, "cpu": cpu_per_message, "p3": p3, "p5": p5}


async def main(parts: list[str], budget: Budget) -> None:
    logging.basicConfig(level=logging.ERROR)
    print(f"event loop: {type(asyncio.get_running_loop()).__module__}; python {sys.version.split()[0]}; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (figures are only as quiet as the machine)",
          flush=True)
    for part in parts:
        began = time.perf_counter()
        await PARTS[part](budget)
        print(f"  ({part} took {time.perf_counter() - began:.0f} s; load average {os.getloadavg()[0]:.1f})", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {','.join(PARTS)}")
    parser.add_argument("--quick", action="store_true", help="half the messages and seconds")
    args = parser.parse_args()
    budget = Budget()
    if args.quick:
        budget = Budget(1000, 3, 10_000, 1500, 1.5, 2.0, 5.0)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}")
    eventloop.run(main(parts, budget))


if __name__ == "__main__":
    cli()
