"""Run a session with no UI: live progress on stderr, a table on stdout, JSON on request."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rtplay.crowd import render_crowds
from rtplay.events import Event, Failed, FaultEnded, FaultStarted, ResetReceived
from rtplay.faultspec import FaultSpec
from rtplay.protocol.health import overload_warning
from rtplay.session import Session, SessionConfig

log = logging.getLogger(__name__)


@dataclass
class HeadlessOptions:
    duration: float = 10.0
    json_path: Path | None = None
    progress: bool = True
    browser: bool = False
    """Also run headless Chromium on the server's page and report it under ``"browser"``."""
    settle_s: float = 5.0
    """After the run, how long to wait for clients to receive everything published."""
    stop: asyncio.Event | None = None
    """Set it (Ctrl-C, say) to end the run early: the report is still written, marked partial."""
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)


def format_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


COLUMNS = (
    ("transport", 14), ("state", 9), ("delivered", 9), ("lost", 6), ("reset", 6), ("dup", 5),
    ("ooo", 5), ("p50 ms", 8), ("p95 ms", 8), ("p99 ms", 8), ("max ms", 8), ("conn", 5),
    ("reconn", 6), ("down s", 7), ("B/msg", 7),
)


def _row(name: str, entry: dict[str, Any], state: str) -> list[str]:
    lat = entry["latency_ms"]
    bpm = entry.get("wire_bytes_per_msg")
    return [
        name, state, str(entry["delivered"]), str(entry["lost"]), str(entry["lost_to_reset"]),
        str(entry["duplicates"]), str(entry["out_of_order"]), format_ms(lat["p50"]),
        format_ms(lat["p95"]), format_ms(lat["p99"]), format_ms(lat["max"]),
        str(entry.get("connects", "")), str(entry.get("reconnects", "")),
        "" if "downtime_s" not in entry else f"{entry['downtime_s']:.1f}",
        "-" if bpm is None else f"{bpm:.0f}",
    ]


def render_table(report: dict[str, Any]) -> str:
    """The per-transport table printed at the end of a run (one row per channel)."""
    rows: list[list[str]] = []
    for name, entry in report["transports"].items():
        channels = entry.get("channels")
        if not channels:
            rows.append(_row(name, entry, entry["state"]))
            continue
        for i, (channel, stats) in enumerate(channels.items()):
            shared = {k: entry[k] for k in ("connects", "reconnects", "downtime_s")} if i == 0 else {}
            rows.append(_row(f"{name}/{channel}", stats | shared, entry["state"] if i == 0 else ""))
    header = "  ".join(title.rjust(width) if i else title.ljust(width) for i, (title, width) in enumerate(COLUMNS))
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, (_, w)) in enumerate(zip(row, COLUMNS))))
    summary = f"published {report['published']} messages in {report['duration_s']:.1f} s"
    notes = [f"{name} failed: {e['failed_reason']}" for name, e in report["transports"].items() if e.get("failed_reason")]
    notes += [
        f"{name}: cut {e['cut_too_slow']}x by the server as too slow for the rate (the client, not a crash)"
        for name, e in report["transports"].items() if e.get("cut_too_slow")
    ]
    return "\n".join([summary, *lines, *notes, *render_faults(report.get("faults", [])), *render_crowds(report)])


def render_faults(faults: list[dict[str, Any]]) -> list[str]:
    """Recovery figures per fault per transport, under the table."""
    if not faults:
        return []
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}s"
    lines = ["", "recovery per fault:  detect = fault start → client notices; recover = fault end → next message"]
    for f in faults:
        lines.append(
            f"  {f['fault']:<28} {f['transport']:<9} detect {s(f['time_to_detect_s']):>7}  recover "
            f"{s(f['time_to_recover_s']):>7}  lost {f['lost']}  reset {f['lost_to_reset']}  "
            f"dup {f['duplicates']}  replayed {f['replayed']}" + (f"  FAILED: {f['failed']}" if f.get("failed") else "")
        )
    return lines


def progress_line(session: Session) -> str:
    parts = [f"[{session.duration():5.1f}s] published {session.published}"]
    for name, client in session.clients.items():
        delivered = client.stats[client.channels[0]].tracker.delivered
        parts.append(f"{name} {delivered} ({client.state.value})")
        if name in session.crowds:
            states = session.crowds[name].stats.states()
            parts.append(f"crowd {states['open']} open/{states['retrying']} retrying")
    return " | ".join(parts)


class EventPrinter:
    """Prints the events a headless user needs to see: failures and resets."""

    def __init__(self, err: TextIO) -> None:
        self.err = err

    def __call__(self, event: Event) -> None:
        if isinstance(event, Failed):
            print(f"  {event.transport}: failed: {event.reason}", file=self.err)
        elif isinstance(event, FaultStarted):
            print(f"  fault: {event.fault.describe()}", file=self.err)
        elif isinstance(event, FaultEnded) and event.fault.kind.value != "drop":
            print(f"  fault ended: {event.fault.describe()}", file=self.err)
        elif isinstance(event, ResetReceived):
            print(f"  {event.transport}: reset, {event.lost} messages no longer available", file=self.err)


async def run_headless(
    config: SessionConfig, options: HeadlessOptions, faults: list[FaultSpec] | None = None
) -> dict[str, Any]:
    """Run one session for ``options.duration`` seconds (with a fault timeline); return its report."""
    session = Session(config)
    if options.progress:
        session.subscribe(EventPrinter(options.err))
    await session.start()
    browser = None
    try:
        if options.browser:
            from rtplay.browser import BrowserSide  # Playwright loads only when asked for

            browser = BrowserSide(session.endpoints().http_url, session.endpoints().quic_port, session.clock)
            await browser.start()
        if faults:
            session.faults.run_timeline(faults)
        stop = options.stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        end = loop.time() + options.duration
        while (remaining := end - loop.time()) > 0 and not stop.is_set():
            try:
                async with asyncio.timeout(min(1.0, remaining)):
                    await stop.wait()
            except TimeoutError:
                pass
            if options.progress:
                print(progress_line(session), file=options.err, flush=True)
        if not stop.is_set():
            await session.settle(options.settle_s)
        await session.finish_crowds()
        report = session.report()
        if browser is not None:
            await browser.settle(session.published, options.settle_s)
            report["browser"] = browser.report(session.published, report["faults"], session.faults.recovery.origin)
        if stop.is_set():
            report["partial"] = True
    finally:
        if browser is not None:
            await browser.stop()
        await session.stop()
    print(render_table(report), file=options.out)
    if "browser" in report:
        from rtplay.browser import render_browser

        print(render_browser(report, render_table), file=options.out)
    warning = overload_warning(report["health"])
    if warning:
        print(warning, file=options.err)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {options.json_path}", file=options.err)
    return report
