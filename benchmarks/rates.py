"""How fast can each transport go before it loses messages? And how late are they at 100/s?

    python benchmarks/rates.py                       # all transports, 10 s per step
    python benchmarks/rates.py --transports ws,sse --duration 5 --rates 1000,2000,5000

Runs one real session (clients in this process, the server a child process, as ``rtplay``
does) per rate and prints, per transport: delivered, lost, duplicates and p50/p99 latency. The first rate at
which some transport loses a message (or fails to catch up within the settle time) ends
the climb for that transport; the last rate it passed is its lossless ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time

from rtplay.engine.session import Session, SessionConfig, available_transports
from rtplay.protocol.options import ServerOptions
from rtplay.runtime import eventloop

DEFAULT_RATES = [100, 500, 1000, 2000, 3000, 5000, 8000]


def channel_rows(name: str, entry: dict) -> list[tuple[str, dict]]:
    channels = entry.get("channels")
    return [(f"{name}/{ch}", stats) for ch, stats in channels.items()] if channels else [(name, entry)]


async def run_step(transports: list[str], rate: float, duration: float) -> tuple[dict, float]:
    session = Session(SessionConfig(transports=transports, server=ServerOptions(rate=rate)))
    start = time.process_time()
    await session.start()
    try:
        await asyncio.sleep(duration)
        await session.settle(10)
        report = session.report()
    finally:
        await session.stop()
    return report, (time.process_time() - start) / duration


def lossless(entry: dict, reliable_only: bool = True) -> bool:
    rows = channel_rows("", entry)
    if reliable_only and entry.get("channels"):
        rows = rows[:1]  # the first channel is the reliable one (stream / reliable)
    return all(stats["lost"] == stats["lost_to_reset"] == stats["duplicates"] == 0 for _, stats in rows)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transports", default=",".join(available_transports()))
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rates", default=",".join(map(str, DEFAULT_RATES)))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    remaining = args.transports.split(",")
    ceilings: dict[str, float] = {}
    for rate in map(float, args.rates.split(",")):
        if not remaining:
            break
        report, cpu = await run_step(remaining, rate, args.duration)
        achieved = report["published"] / report["duration_s"]
        print(f"\n{rate:g} msg/s for {args.duration:g} s: published {report['published']} ({achieved:.0f}/s), "
              f"CPU {cpu:.0%} of one core")
        if achieved < 0.95 * rate:
            print("  the publisher fell behind its schedule: the event loop is saturated at this rate")
        print(f"  {'transport':<16}{'delivered':>10}{'lost':>7}{'reset':>7}{'dup':>6}{'p50 ms':>9}{'p99 ms':>9}")
        for name, entry in report["transports"].items():
            for label, stats in channel_rows(name, entry):
                lat = stats["latency_ms"]
                p50 = "-" if lat["p50"] is None else f"{lat['p50']:.1f}"
                p99 = "-" if lat["p99"] is None else f"{lat['p99']:.1f}"
                print(f"  {label:<16}{stats['delivered']:>10}{stats['lost']:>7}{stats['lost_to_reset']:>7}"
                      f"{stats['duplicates']:>6}{p50:>9}{p99:>9}")
        for name, entry in report["transports"].items():
            if lossless(entry) and achieved >= 0.95 * rate:
                ceilings[name] = rate
            else:
                remaining.remove(name)
    print("\nhighest rate sustained with nothing lost, per transport (reliable channel):")
    for name in args.transports.split(","):
        print(f"  {name:<10}{ceilings.get(name, 0):>8g} msg/s" + ("  (not limited by the rates tried)" if name in remaining else ""))


if __name__ == "__main__":
    eventloop.run(main())
