"""Regenerate the README's "What each transport does under each fault" table from real runs.

    python benchmarks/fault_table.py                    # every fault, ~3 minutes
    python benchmarks/fault_table.py --faults drop,stall --duration 12

One headless session per fault (every transport, 50 msg/s, the fault from 3 s for 6 s;
``outage``/``crash`` 5 s long), each with the default client settings. Every cell comes from
that run's JSON report: when the client noticed and when it was back (the per-fault record),
and whatever it lost, had reset, duplicated or replayed; for wt and rtc also what their
unreliable channel lost, up or down. Prints a Markdown table on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
from typing import Any

from rtplay.cli.headless import HeadlessOptions, run_headless
from rtplay.engine.session import SessionConfig, available_transports
from rtplay.model.faultspec import parse_fault
from rtplay.protocol.options import ServerOptions

#: (column label, spec): the fault from 3 s; timed ones 6 s long, outage/crash 5 s.
FAULTS = (
    ("`drop`", "drop@3s"),
    ("`stall`", "stall@3s-9s"),
    ("`error=503`", "error=503@3s-9s"),
    ("`delay=200ms`", "delay=200ms@3s-9s"),
    ("`outage=5s`", "outage=5s@3s"),
    ("`crash=5s`", "crash=5s@3s"),
    ("`loss=20%`", "loss=20%@3s-9s"),
    ("`offline`", "offline@3s-9s"),
    ("`throttle=2KB/s`", "throttle=2KB/s@3s-9s"),
)

RATE = 50.0
#: Long enough for the longpoll client's 10 s error delay to play out after the fault.
SETTLE_S = 12.0


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def cell(entry: dict[str, Any], record: dict[str, Any] | None) -> str:
    """One transport's figures under one fault, in a few words."""
    parts = []
    if record is not None:
        detect, back = record["time_to_detect_s"], record["time_to_recover_s"]
        parts.append("never notices" if detect is None else f"notices {seconds(detect)}")
        if record.get("failed"):
            parts.append("**fails for good**")
        elif back is not None:
            parts.append(f"back {seconds(back)}")
        if record["replayed"]:
            parts.append(f"replays {record['replayed']}")
    for key, label in (("lost", "lost"), ("lost_to_reset", "reset"), ("duplicates", "dup")):
        if entry.get(key):
            parts.append(f"**{label} {entry[key]}**")
    lat = entry["latency_ms"]
    parts.append(f"p99 {lat['p99']:.0f} ms" if lat["p99"] is not None else "nothing arrived")
    for name, channel in (entry.get("channels") or {}).items():
        if channel.get("loss_rate") is not None:
            parts.append(
                f"{name} lost {channel['lost']} ({100 * channel['loss_rate']:.0f} %: "
                f"{channel['lost_while_connected']} up, {channel['lost_while_down']} down)"
            )
    return ", ".join(parts)


async def run_one(spec: str, duration: float) -> dict[str, Any]:
    config = SessionConfig(transports=available_transports(), server=ServerOptions(rate=RATE))
    options = HeadlessOptions(duration=duration, progress=False, settle_s=SETTLE_S, out=io.StringIO())
    return await run_headless(config, options, [parse_fault(spec)])


def table(results: list[tuple[str, dict[str, Any]]]) -> str:
    transports = list(results[0][1]["transports"]) if results else []
    lines = ["| fault | " + " | ".join(transports) + " |", "|---" * (len(transports) + 1) + "|"]
    for label, report in results:
        records = {f["transport"]: f for f in report["faults"]}
        cells = [cell(report["transports"][t], records.get(t)) for t in transports]
        note = "" if report.get("settled") else " (not settled)"
        lines.append(f"| {label}{note} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=12.0, help="seconds of publishing per fault (default 12)")
    parser.add_argument("--faults", help="comma-separated labels to run, e.g. drop,stall (default all)")
    args = parser.parse_args()
    chosen = [f for f in FAULTS if not args.faults or f[0].strip("`").split("=")[0] in args.faults.split(",")]
    results = []
    for label, spec in chosen:
        logging.getLogger(__name__).info("running %s", spec)
        results.append((label, await run_one(spec, args.duration)))
    print(table(results))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
