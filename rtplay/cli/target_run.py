"""``rtplay run --target …``: rtplay's clients on the user's endpoints, headless.

Prints a table per target (``unknown`` where a figure cannot be known without an adapter,
never 0), what is measured and what each unknown figure needs, and per fault what each
target did with the reconnect, in words.
"""

from __future__ import annotations

import asyncio
import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from rtplay.cli.running import run_for
from rtplay.engine.target_session import TargetConfig, TargetSession, unreachable
from rtplay.model.faultspec import FaultSpec
from rtplay.model.target_stats import NEVER_KNOWN
from rtplay.runtime.gcpolicy import start_up_heap_frozen

UNKNOWN = "unknown"

#: Width the notes under the table wrap to.
NOTES_WIDTH = 100


@dataclass
class TargetRunOptions:
    duration: float = 10.0
    json_path: Path | None = None
    progress: bool = True
    stop: asyncio.Event | None = None
    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)


def _count(key: str) -> Callable[[dict[str, Any]], str]:
    return lambda e: UNKNOWN if e.get(key) is None else str(e[key])


def _latency(p: str) -> Callable[[dict[str, Any]], str]:
    def get(e: dict[str, Any]) -> str:
        latency = e.get("latency_ms")
        if latency is None:
            return UNKNOWN
        value = latency.get(p)
        return "-" if value is None else f"{value:.1f}" if value < 100 else f"{value:.0f}"
    return get


def _gap(e: dict[str, Any]) -> str:
    return "-" if e.get("max_gap_s") is None else f"{e['max_gap_s']:.2f}"


def _unread(e: dict[str, Any]) -> str:
    return str(sum(e.get("unreadable", {}).values()))


COLUMNS: tuple[tuple[str, int, Callable[[dict[str, Any]], str]], ...] = (
    ("msgs", 6, _count("messages")),
    ("delivered", 9, _count("delivered")),
    ("lost", 7, _count("lost")),
    ("dup", 7, _count("duplicates")),
    ("ooo", 7, _count("out_of_order")),
    ("p50", 7, _latency("p50")),
    ("p99", 7, _latency("p99")),
    ("gap s", 6, _gap),
    ("rec", 4, _count("reconnects")),
    ("down s", 6, lambda e: f"{e['downtime_s']:.1f}"),
    ("unread", 6, _unread),
)
"""The target table's columns: (title, width, value)."""


def render_target_table(report: dict[str, Any]) -> str:
    """The table, the notes on what is measured, and what each target did per fault."""
    widths = [9, 9] + [w for _, w, _ in COLUMNS]
    def line(cells: list[str]) -> str:
        return " ".join(c[:w].rjust(w) if i > 1 else c[:w].ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=False)))
    header = line(["target", "state"] + [t for t, _, _ in COLUMNS])
    rows = [line([name, e["state"]] + [get(e) for _, _, get in COLUMNS]) for name, e in report["transports"].items()]
    mode = "direct (client-side faults only)" if report["mode"] == "direct" else "through rtplay's proxy"
    out = [f"target mode, {mode}: {report['duration_s']:.1f} s", header, "-" * len(header), *rows, ""]
    for name, e in report["transports"].items():
        out += _target_notes(name, e)
    out += textwrap.wrap("never known in target mode: " + "; ".join(f"{k} ({v})" for k, v in NEVER_KNOWN.items()),
                         NOTES_WIDTH, subsequent_indent="  ")
    out += render_fault_words(report["faults"])
    return "\n".join(out)


def _target_notes(name: str, e: dict[str, Any]) -> list[str]:
    ident = e["identity"]
    via = f" via {e['via']}" if e.get("via") else ""
    lines = [f"{name}: {e['url']}{via}  seq {ident['seq']}, time {ident['time']}, resume {ident['resume'] or 'none'}"]
    needs: dict[str, list[str]] = {}
    for figure, how in e["unknown"].items():
        if figure not in NEVER_KNOWN:
            needs.setdefault(how, []).append(figure)
    text = "measured: " + ", ".join(e["measured"])
    if needs:
        text += ". unknown: " + "; ".join(f"{', '.join(figures)} (needs {how})" for how, figures in needs.items())
    lines += textwrap.wrap(text, NOTES_WIDTH, initial_indent="  ", subsequent_indent="    ")
    unread = {k: v for k, v in e["unreadable"].items() if v}
    if unread:
        lines.append("  unreadable messages: " + ", ".join(f"{k} {v}" for k, v in unread.items()))
    if e.get("failed_reason"):
        lines.append(f"  failed: {e['failed_reason']}")
    if e["resumption"]:
        lines.append("  reconnects: " + "; ".join(r["words"] for r in e["resumption"][-5:]))
    if crowd := e.get("crowd"):
        unknown = UNKNOWN
        lines.append(
            f"  crowd of {crowd['clients']}: " + ", ".join(f"{n} {s}" for s, n in crowd["states"].items())
            + f"; messages {crowd['messages']}, lost {unknown if crowd['lost'] is None else crowd['lost']}, "
            + f"reconnects {crowd['reconnects']}"
            + ("; answered: " + ", ".join(f"{k} {v}" for k, v in crowd["reconnect_outcomes"].items())
               if crowd["reconnect_outcomes"] else "")
        )
    return lines


def render_fault_words(faults: list[dict[str, Any]]) -> list[str]:
    """Per fault, what each target did with the reconnect, in words."""
    if not faults:
        return []
    lines = ["", "what the target did, per fault:"]
    for f in faults:
        for transport, t in f["transports"].items():
            lost = UNKNOWN if t["lost"] is None else t["lost"]
            lines.append(f"  #{f['id']} {f['fault']:<14} {transport:<8} lost {lost}: {'; '.join(t['did'])}")
    return lines


def progress_line(session: TargetSession) -> str:
    parts = [f"[{session.duration():5.1f}s]"]
    for name, client in session.clients.items():
        parts.append(f"{name} {session.taps[name].stats.messages} msgs ({client.state.value})")
    return " | ".join(parts)


async def run_targets(config: TargetConfig, options: TargetRunOptions, faults: list[FaultSpec]) -> dict[str, Any] | str:
    """One run against the targets: the report, or why it could not start."""
    problems = await unreachable(config.targets)
    if problems:
        return "; ".join(problems)
    session = TargetSession(config)
    await session.start()
    try:
        with start_up_heap_frozen():  # as in rtplay run: what start-up built stays out of full passes
            session.run_timeline(faults)
            stop = options.stop or asyncio.Event()

            def progress() -> None:
                print(progress_line(session), file=options.err, flush=True)

            await run_for(options.duration, stop, progress if options.progress else None)
            report = session.report()
            if stop.is_set():
                report["partial"] = True
    finally:
        await session.stop()
    print(render_target_table(report), file=options.out)
    if options.json_path is not None:
        options.json_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"report written to {options.json_path}", file=options.err)
    return report
