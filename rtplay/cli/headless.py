"""Run a session with no UI: live progress on stderr, a table on stdout, JSON on request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import platform
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rtplay.cli.args import version
from rtplay.cli.running import run_for
from rtplay.clients.core import ReconnectingClient
from rtplay.engine.session import Session, SessionConfig
from rtplay.model.crowd import render_crowds
from rtplay.model.events import Event, Failed, FaultEnded, FaultStarted, ResetReceived
from rtplay.model.faultspec import FaultSpec
from rtplay.runtime import eventloop
from rtplay.runtime.gcpolicy import start_up_heap_frozen
from rtplay.runtime.health import overload_warning

if TYPE_CHECKING:  # imported when --browser asks for it (it brings Playwright's driver)
    from rtplay.engine.browser import BrowserSide

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
    wide: bool = False
    """Print every column of the table (``--wide``)."""
    stop: asyncio.Event | None = None
    """Set it (Ctrl-C, say) to end the run early: the report is still written, marked partial."""
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)


def table_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _int(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda e: "" if e.get(key) is None else str(e[key])


def _lat(group: str, p: str) -> Callable[[dict[str, Any]], str]:
    return lambda e: table_ms((e.get(group) or {}).get(p))


def _rate(e: dict[str, Any]) -> str:
    return "" if e.get("loss_rate") is None else f"{100 * e['loss_rate']:.1f}"


def _down(e: dict[str, Any]) -> str:
    return "" if "downtime_s" not in e else f"{e['downtime_s']:.1f}"


def _bpm(e: dict[str, Any]) -> str:
    return "-" if e.get("wire_bytes_per_msg") is None else f"{e['wire_bytes_per_msg']:.0f}"


Column = tuple[str, int, Callable[[dict[str, Any]], str], bool]
"""(title, width, value from a report entry, shown without ``--wide``)."""

COLUMNS: tuple[Column, ...] = (
    ("delivered", 9, _int("delivered"), True),
    ("pend", 5, _int("pending"), True),
    ("lost", 5, _int("lost"), True),
    ("up", 5, _int("lost_while_connected"), False),
    ("down", 5, _int("lost_while_down"), False),
    ("loss%", 5, _rate, False),
    ("reset", 5, _int("lost_to_reset"), True),
    ("dup", 4, _int("duplicates"), True),
    ("ooo", 4, _int("out_of_order"), True),
    ("p50", 6, _lat("latency_ms", "p50"), True),
    ("p95", 6, _lat("latency_ms", "p95"), False),
    ("p99", 6, _lat("latency_ms", "p99"), True),
    ("max", 6, _lat("latency_ms", "max"), False),
    ("p50@10s", 7, _lat("recent_latency_ms", "p50"), False),
    ("p99@10s", 7, _lat("recent_latency_ms", "p99"), False),
    ("conn", 4, _int("connects"), False),
    ("rec", 4, _int("reconnects"), True),
    ("down s", 6, _down, True),
    ("B/msg", 5, _bpm, True),
)
"""Every column of the table; the default ones fit 100 columns, ``--wide`` shows them all."""

LEGEND: tuple[tuple[str, str], ...] = (
    ("delivered", "unique messages received"),
    ("pend", "published while subscribed, not received yet, still recoverable (connected, or retrying "
             "with a cursor the server can still serve)"),
    ("lost", "can never arrive. Reliable: a hole the client moved past, or the tail of a client that "
             "failed or can no longer be served. Unreliable (wt/datagram, rtc/unreliable): every seq "
             "from the channel's first arrival to the end that never came, up or down (after a 0.5 s "
             "grace for the tail), split up (while connected) / down (while down), loss% of that span"),
    ("reset", "lost to reset: the server said it could no longer replay them"),
    ("dup", "a seq received again (a late fill of a gap is ooo, never dup)"),
    ("ooo", "out of order: arrived after a later seq, filling its gap"),
    ("p50 p99", "one-way latency percentiles in ms over the whole run (p50@10s p99@10s: the last 10 s)"),
    ("rec", "reconnects (conn: connects)"),
    ("down s", "seconds without a connection, counted only while publishing (never above the duration)"),
    ("B/msg", "wire bytes received per delivered message: envelopes, resets, framing and HTTP headers, "
              "never pings, pongs or heartbeats"),
)
"""The table's legend: the README's definitions, word for word."""

LEGEND_WIDTH = 100


def _chosen(wide: bool) -> list[Column]:
    return [c for c in COLUMNS if wide or c[3]]


def _row(name: str, entry: dict[str, Any], state: str, columns: list[Column]) -> list[str]:
    return [name, state] + [get(entry) for _, _, get, _ in columns]


def render_table(report: dict[str, Any], wide: bool = False, legend: bool = True) -> str:
    """The per-transport table printed at the end of a run (one row per channel)."""
    columns = _chosen(wide)
    rows: list[list[str]] = []
    for name, entry in report["transports"].items():
        channels = entry.get("channels")
        if not channels:
            rows.append(_row(name, entry, entry["state"], columns))
            continue
        for i, (channel, stats) in enumerate(channels.items()):
            shared = {k: entry[k] for k in ("connects", "reconnects", "downtime_s")} if i == 0 else {}
            rows.append(_row(f"{name}/{channel}", stats | shared, entry["state"] if i == 0 else "", columns))
    widths = [14, 9] + [w for _, w, _, _ in columns]
    titles = ["transport", "state"] + [t for t, _, _, _ in columns]
    def line(cells: list[str]) -> str:
        return " ".join(c[:w].rjust(w) if i > 1 else c[:w].ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False)))
    header = line(titles)
    lines = [header, "-" * len(header), *(line(row) for row in rows)]
    summary = f"published {report['published']} messages in {report['duration_s']:.1f} s"
    notes = [f"{name} failed: {e['failed_reason']}" for name, e in report["transports"].items() if e.get("failed_reason")]
    notes += [
        f"{name}: cut {e['cut_too_slow']}x by the server as too slow for the rate (the client, not a crash)"
        for name, e in report["transports"].items() if e.get("cut_too_slow")
    ]
    if report.get("settled") is False:
        notes += textwrap.wrap("not settled: clients were still catching up when the settle timed out; "
                               "pend counts what was still on its way", LEGEND_WIDTH)
    out = [summary, *lines, *notes]
    if legend:
        out += ["", *render_legend(wide)]
    return "\n".join([*out, *render_faults(report.get("faults", [])), *render_crowds(report)])


def render_legend(wide: bool = False) -> list[str]:
    """The legend under the table, wrapped to :data:`LEGEND_WIDTH` columns."""
    shown = {t for t, _, _, _ in _chosen(wide)} | {"p50 p99"}
    lines = []
    for name, text in LEGEND:
        if name not in shown and not (name == "p50 p99" and "p50" in shown):
            continue
        lines += textwrap.wrap(text, LEGEND_WIDTH, initial_indent=f"{name:>9}  ", subsequent_indent=" " * 11)
    return lines


def render_faults(faults: list[dict[str, Any]]) -> list[str]:
    """Recovery figures per fault per transport, under the table."""
    if not faults:
        return []
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}s"
    lines = ["", "recovery per fault:  detect = fault start → client notices; recover = fault end → next message",
             "  (a fault owns a transport's events until it recovers or the next fault there starts)"]
    for f in faults:
        extra = [f"{ch} lost {c['lost']}" for ch, c in list(f.get("channels", {}).items())[1:]]
        if f.get("overlaps"):
            extra.append("overlaps " + ",".join(f"#{i}" for i in f["overlaps"]))
        if f.get("failed"):
            extra.append(f"FAILED: {f['failed']}")
        lines.append(
            f"  #{f.get('id', '?'):<3} {f['fault']:<24} {f['transport']:<8} detect {s(f['time_to_detect_s']):>6} "
            f"recover {s(f['time_to_recover_s']):>6}  lost {f['lost']} reset {f['lost_to_reset']} "
            f"dup {f['duplicates']} replayed {f['replayed']}" + "".join(f"  {e}" for e in extra)
        )
    return lines


def progress_line(session: Session) -> str:
    parts = [f"[{session.duration():5.1f}s] published {session.published_count}"]
    for name, client in session.clients.items():
        delivered = client.stats[client.channels[0]].tracker.delivered
        parts.append(f"{name} {delivered} ({client.state.value})")
        if name in session.crowds:
            crowd = session.crowds[name]
            states = crowd.stats.states()
            gone = f"/{crowd.lost_clients} on lost workers" if crowd.lost_clients else ""
            parts.append(f"crowd {states['open']} open/{states['retrying']} retrying{gone}")
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


#: The libraries whose versions a report records (their behaviour is in the figures).
REPORTED_LIBRARIES = ("aiohttp", "aioquic", "aiortc", "aioice", "websockets", "httpx", "uvloop")


def library_versions() -> dict[str, str | None]:
    """rtplay's, Python's and :data:`REPORTED_LIBRARIES`' versions (None: not installed)."""
    versions: dict[str, str | None] = {"rtplay": version(), "python": platform.python_version()}
    for name in REPORTED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def run_settings(session: Session, options: HeadlessOptions, faults: list[FaultSpec]) -> dict[str, Any]:
    """What the run was asked to do, so a report can be read on its own: rate, transports,
    faults as given, every client's retry policy, crowd and seed, server, versions."""
    policies = {
        name: str(c.retry_spec) if c.retry_spec is not None else c.retry.describe()
        for name, c in session.clients.items() if isinstance(c, ReconnectingClient)
    }
    config = session.config
    return {
        "rate": session.rate_found if session.rate_found is not None else config.server.rate,
        "duration_s": options.duration,
        "transports": list(config.transports),
        "faults": [str(f) for f in faults],
        "retry": policies,
        "clients": config.crowd,
        "seed": config.crowd_seed,
        "retry_seed": config.retry_seed,
        "server": config.server_url or "spawned",
        "event_loop": eventloop.loop_name(),
        "versions": library_versions(),
    }


async def run_headless(
    config: SessionConfig, options: HeadlessOptions, faults: list[FaultSpec] | None = None
) -> dict[str, Any]:
    """Run one session for ``options.duration`` seconds (with a fault timeline); return its report."""
    if options.browser and config.retry_seed is None:  # the page and rtplay draw the same jitter
        config = replace(config, retry_seed=config.crowd_seed)
    session = Session(config)
    if options.progress:
        session.subscribe(EventPrinter(options.err))
    browser: BrowserSide | None = None

    async def start_browser() -> None:
        nonlocal browser
        from rtplay.engine.browser import BrowserSide, page_query, retry_policies  # Playwright loads only when asked for

        # The page retries as rtplay's clients do: their policies, and draws from the same seed.
        query = page_query(retry_policies(session.clients), session.config.retry_seed)
        browser = BrowserSide(session.endpoints().http_url, session.endpoints().quic_port, session.clock, query)
        await browser.start()

    frozen = contextlib.ExitStack()
    try:
        # Publishing waits for the browser's first connections as for rtplay's own clients'.
        await session.start(start_browser if options.browser else None)
        # What start-up built lives as long as the run: out of the collector's full passes,
        # which otherwise held the loop ~100 ms as the clients reconnected after a fault.
        frozen.enter_context(start_up_heap_frozen())
        if faults:
            session.faults.run_timeline(faults)
        stop = options.stop or asyncio.Event()

        def progress() -> None:
            print(progress_line(session), file=options.err, flush=True)

        await run_for(options.duration, stop, progress if options.progress else None)
        if not stop.is_set():
            await session.settle(options.settle_s)
        await session.finish_crowds()
        report = session.report()
        report["settings"] = run_settings(session, options, faults or [])
        session.close_message_log()  # the log ends with what this report was taken against
        if browser is not None:
            await browser.settle(session.published, options.settle_s)
            report["browser"] = browser.report(session.published, report["faults"], session.faults.recovery.origin)
        if stop.is_set():
            report["partial"] = True
    finally:
        if browser is not None:
            await browser.stop()
        await session.stop()
        frozen.close()
    print(render_table(report, wide=options.wide), file=options.out)
    if "browser" in report:
        from rtplay.engine.browser import render_browser

        print(render_browser(report, lambda r: render_table(r, legend=False)), file=options.out)
    warning = overload_warning(report["health"])
    if warning:
        print(warning, file=options.err)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {options.json_path}", file=options.err)
    return report
