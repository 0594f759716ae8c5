"""The browser's figures in rtplay's report: entries with rtplay's fields, and per fault what
the page's client did beside rtplay's.

Counts come from the page's journal through rtplay's own accounting model
(:class:`rtplay.model.browser_journal.BrowserAccounts`); latency percentiles from the page
(it times arrivals with the same 1 % buckets); detect / recover times from the page's own
timed state changes, matched to the fault that owns them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rtplay.model.browser_journal import BrowserAccounts

#: How finely the browser's figures are timed: the page posts and rtplay reads every 250 ms.
RESOLUTION_S = 0.5

#: A client that leaves ``open`` this long after a fault ended is not counted as noticing it.
DETECT_WINDOW_S = 10.0

#: How long before a fault's recorded start a page's ``down`` still belongs to it. The server
#: acts on a fault before its "fault started" event reaches the session (a few ms; more on a
#: loaded machine), and the page's wall clock is mapped onto the session's once per read;
#: without this, a page that went down at the crash read as "never noticed".
DETECT_TOLERANCE_S = 0.25


def _channel_entry(figures: dict[str, object], page: dict[str, Any]) -> dict[str, Any]:
    return figures | {
        "latency_ms": page["latency_ms"],
        "recent_latency_ms": {"p50": None, "p99": None, "window_s": None},  # the page keeps none
        "wire_bytes_per_msg": None,  # a page cannot see its own wire bytes
    }


def report_entries(
    clients: dict[str, Any], accounts: BrowserAccounts, published: int, replay_from: int = 1, final: bool = False
) -> dict[str, Any]:
    """One page's clients as entries of the JSON report: rtplay's fields, counted by rtplay's
    model from the page's journal (``clients``: the page's latest report, for state,
    connections, latency and log)."""
    out: dict[str, Any] = {}
    for name, client in clients.items():
        figures = accounts.client(name).figures(published, replay_from, final)
        channels = {c: _channel_entry(figures[c], page) for c, page in client["channels"].items() if c in figures}
        if not channels:
            continue
        base: dict[str, Any] = {
            "state": client["state"],
            "connects": client["connects"],
            "reconnects": client["reconnects"],
            "downtime_s": client["downtime_s"],
        }
        if client["state"] == "failed":
            base["failed_reason"] = client.get("failed_reason", "")
        primary = next(iter(channels.values()))
        entry = primary | base
        if len(channels) > 1:
            entry["channels"] = channels
        out[name] = entry
    return out


@dataclass
class Sample:
    """One read of the browser's report: per transport, state and primary delivered count."""

    at: float
    clients: dict[str, tuple[str, int]] = field(default_factory=dict)


def primary_counts(clients: dict[str, Any]) -> dict[str, tuple[str, int]]:
    """(state, delivered on the first channel) per transport."""
    out: dict[str, tuple[str, int]] = {}
    for name, client in clients.items():
        first = next(iter(client["channels"].values()))
        out[name] = (client["state"], first["delivered"])
    return out


def _from_events(
    events: list[list[Any]], start: float, end: float, wall_offset: float, until: float | None
) -> tuple[float | None, float | None]:
    """(detected at, back at) in session-clock seconds from the page's own timed events: the
    first ``down`` from :data:`DETECT_TOLERANCE_S` before the fault to :data:`DETECT_WINDOW_S`
    after it (and before ``until``, the next fault on the transport, which owns what follows),
    and the first ``back`` after it."""
    timed = [(kind, ms / 1000 - wall_offset) for kind, ms in events if isinstance(ms, int | float)]
    last = end + DETECT_WINDOW_S
    if until is not None:
        last = min(last, until - DETECT_TOLERANCE_S)
    first = start - DETECT_TOLERANCE_S
    down = next((t for kind, t in timed if kind == "down" and first <= t < last), None)
    if down is None:
        return None, None
    back = next((t for kind, t in timed if kind == "back" and t >= down), None)
    return max(down, start), back


def recovery(
    samples: list[Sample],
    transport: str,
    start: float,
    end: float,
    events: list[list[Any]] | None = None,
    wall_offset: float = 0.0,
    until: float | None = None,
) -> dict[str, Any]:
    """What the browser's client of ``transport`` did about a fault active over [start, end]
    (session-clock seconds; ``until``: when the next fault on the transport began): when it
    noticed (left ``open``), when it got a new message after the fault ended (or after it
    noticed, if later), and how it ended up — as rtplay measures its own clients. A client
    that went down is timed by the page's own events (``wall_offset`` = wall clock − session
    clock), which a fault taking the server down cannot hide; one that never did is timed by
    the samples, to :data:`RESOLUTION_S`."""
    detected_at, back_at = _from_events(events or [], start, end, wall_offset, until)
    final = "unknown"
    count_at_end = None
    recovered_at = None
    for sample in samples:
        if transport not in sample.clients:
            continue
        state, count = sample.clients[transport]
        final = state
        if sample.at <= end:
            count_at_end = count
        elif recovered_at is None and count_at_end is not None and count > count_at_end and state == "open":
            recovered_at = sample.at
    ref = max(end, detected_at or end)
    if detected_at is not None:
        recovered_at = back_at

    def since(t: float | None, r: float) -> float | None:
        return None if t is None else round(max(0.0, t - r), 3)

    return {
        "time_to_detect_s": since(detected_at, start),
        "time_to_recover_s": since(recovered_at, ref),
        "final_state": final,
    }


def next_starts(faults: list[dict[str, Any]]) -> list[float | None]:
    """Per fault: when the next fault on its transport started (None: none did)."""
    out: list[float | None] = []
    for fault in faults:
        later = [float(f["start_s"]) for f in faults if f.get("transport") == fault.get("transport")
                 and f.get("start_s") is not None and fault.get("start_s") is not None
                 and float(f["start_s"]) > float(fault["start_s"])]
        out.append(min(later) if later else None)
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def side_by_side(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Per fault and transport: rtplay's client and the browser's, what each decided and how
    fast; ``differs`` names what is not the same (final state, or noticing at all)."""
    rtplay_final = {name: entry["state"] for name, entry in report["transports"].items()}
    browser = {(f["fault"], f["transport"], f["start_s"]): f for f in report["browser"]["faults"]}
    rows = []
    for fault in report["faults"]:
        other = browser.get((fault["fault"], fault["transport"], fault["start_s"]))
        if other is None:
            continue
        ours = "failed" if fault.get("failed") else rtplay_final.get(fault["transport"], "?")
        differs = []
        if ours != other["final_state"]:
            differs.append("final state")
        if (fault["time_to_detect_s"] is None) != (other["time_to_detect_s"] is None):
            differs.append("noticed")
        rows.append({
            "fault": fault["fault"], "transport": fault["transport"],
            "rtplay": {"detect_s": fault["time_to_detect_s"], "recover_s": fault["time_to_recover_s"], "final": ours},
            "browser": {"detect_s": other["time_to_detect_s"], "recover_s": other["time_to_recover_s"],
                        "final": other["final_state"]},
            "differs": differs,
        })
    return rows


def render_browser(report: dict[str, Any], render_table: Any) -> str:
    """The browser's table (as rtplay's) and the side-by-side per fault, for the terminal."""
    section = report["browser"]
    lines = ["", "the browser (headless Chromium on the page), same columns:"]
    lines.append(render_table({"transports": section["transports"], "faults": [],
                               "published": report["published"], "duration_s": report["duration_s"]}))
    rows = side_by_side(report)
    if rows:
        lines += ["", f"per fault: rtplay client vs browser (browser times ±{section['resolution_s']:g}s)"]
        lines.append(f"  {'fault':<28} {'transport':<9} {'rtplay detect/recover/final':<30} browser detect/recover/final")
        for row in rows:
            r, b = row["rtplay"], row["browser"]
            ours = f"{_seconds(r['detect_s'])} / {_seconds(r['recover_s'])} / {r['final']}"
            theirs = f"{_seconds(b['detect_s'])} / {_seconds(b['recover_s'])} / {b['final']}"
            mark = f"  DIFFERS: {', '.join(row['differs'])}" if row["differs"] else ""
            lines.append(f"  {row['fault']:<28} {row['transport']:<9} {ours:<30} {theirs}{mark}")
    return "\n".join(lines)
