"""The comparison view: one table of every transport's figures from the JSON report.

Metrics are rows and transports (channels for wt and rtc) are columns, so each row reads
as a comparison. The last rows are the recovery figures of the last fault.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from rtplay.tui.backend import Backend

#: How often the table refreshes: the report walks every histogram, so not at frame rate.
REFRESH_S = 1.0

Getter = Callable[[dict[str, Any], dict[str, Any] | None], Any]


def _ms(value: object) -> str:
    if value is None:
        return "-"
    assert isinstance(value, int | float)
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _num(value: object) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _one_decimal(value: object) -> str:
    return "-" if not isinstance(value, int | float) else f"{value:.1f}"


def _latency(p: str) -> Getter:
    return lambda e, r: _unknown(e, "latency_ms") or _ms(e["latency_ms"][p])


def _unknown(entry: dict[str, Any], key: str) -> str:
    """``unknown`` for a figure a target's report cannot know (target mode), else ""."""
    return "unknown" if entry.get(key) is None and key in (entry.get("unknown") or {}) else ""


def _recovery(key: str) -> Getter:
    def get(entry: dict[str, Any], rec: dict[str, Any] | None) -> str:
        if rec is None:
            return "-"
        value = rec.get(key)
        if value is None and key == "time_to_recover_s" and rec.get("failed"):
            return "failed"
        return _num(value)

    return get


ROWS: tuple[tuple[str, Getter], ...] = (
    ("state", lambda e, r: e.get("state", "")),
    ("delivered", lambda e, r: _unknown(e, "delivered") or _num(e["delivered"])),
    ("pending", lambda e, r: _unknown(e, "pending") or _num(e.get("pending"))),
    ("lost", lambda e, r: _unknown(e, "lost") or _num(e["lost"])),
    ("  while down", lambda e, r: _num(e.get("lost_while_down"))),
    ("  loss rate %", lambda e, r: "-" if e.get("loss_rate") is None else f"{100 * e['loss_rate']:.1f}"),
    ("lost to reset", lambda e, r: _unknown(e, "lost_to_reset") or _num(e["lost_to_reset"])),
    ("duplicates", lambda e, r: _unknown(e, "duplicates") or _num(e["duplicates"])),
    ("out of order", lambda e, r: _unknown(e, "out_of_order") or _num(e["out_of_order"])),
    ("connects", lambda e, r: _num(e.get("connects"))),
    ("reconnects", lambda e, r: _num(e.get("reconnects"))),
    ("downtime s", lambda e, r: _one_decimal(e.get("downtime_s"))),
    ("latency p50 ms", _latency("p50")),
    ("latency p95 ms", _latency("p95")),
    ("latency p99 ms", _latency("p99")),
    ("latency max ms", _latency("max")),
    ("p50 last 10 s ms", lambda e, r: _ms((e.get("recent_latency_ms") or {}).get("p50"))),
    ("p99 last 10 s ms", lambda e, r: _ms((e.get("recent_latency_ms") or {}).get("p99"))),
    ("wire bytes/msg", lambda e, r: _one_decimal(e.get("wire_bytes_per_msg"))),
)
"""Per-transport figures: (row label, value from a report entry)."""

RECOVERY_ROWS: tuple[tuple[str, Getter], ...] = (
    ("time to detect s", _recovery("time_to_detect_s")),
    ("time to recover s", _recovery("time_to_recover_s")),
    ("lost", _recovery("lost")),
    ("replayed", _recovery("replayed")),
    ("duplicates", _recovery("duplicates")),
)
"""Recovery figures of the last fault: (row label, value from its record)."""


def last_fault(report: dict[str, Any]) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The last fault's description and its recovery record per transport."""
    records = report.get("faults") or []
    if not records or report.get("target"):  # target mode words its faults per target instead
        return None, {}
    last = records[-1]
    key = (last["fault"], last.get("start_s"))
    same = [r for r in records if (r["fault"], r.get("start_s")) == key]
    return last["fault"], {r["transport"]: r for r in same}


def columns(report: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str | None]]:
    """(column key, label, entry, channel) per transport, or per channel of wt and rtc."""
    cols: list[tuple[str, str, dict[str, Any], str | None]] = []
    for name, entry in report["transports"].items():
        channels = entry.get("channels")
        if not channels:
            cols.append((name, name, entry, None))
            continue
        shared = {k: entry[k] for k in ("state", "connects", "reconnects", "downtime_s") if k in entry}
        for channel, stats in channels.items():
            cols.append((f"{name}/{channel}", f"{name} {channel}", stats | shared, channel))
    return cols


def _channel_record(rec: dict[str, Any] | None, channel: str | None) -> dict[str, Any] | None:
    if rec is None or channel is None or "channels" not in rec:
        return rec
    merged: dict[str, Any] = rec | rec["channels"].get(channel, {})
    return merged


def table_rows(report: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """Every row of the comparison table: (key, label, a cell per column of :func:`columns`)."""
    cols = columns(report)
    fault, records = last_fault(report)
    rows = [(label, label, [str(get(entry, None)) for _, _, entry, _ in cols]) for label, get in ROWS]
    if fault is not None:
        rows.append(("last-fault", f"last fault: {fault}", ["" for _ in cols]))
        for label, get in RECOVERY_ROWS:
            cells = []
            for key, _, entry, channel in cols:
                rec = _channel_record(records.get(key.split("/")[0]), channel)
                cells.append(str(get(entry, rec)))
            rows.append((f"recovery-{label}", f"  {label}", cells))
    return rows


class CompareScreen(Screen[None]):
    """Every transport side by side, refreshed every second."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,c,q", "dismiss", "close", key_display="esc")]

    def __init__(self, backend: Backend) -> None:
        super().__init__()
        self.backend = backend

    def compose(self) -> ComposeResult:
        yield Static(id="compare-title")
        yield DataTable(id="compare-table", zebra_stripes=True, cursor_type="row")
        yield Static(
            "pending = on its way, still recoverable · lost = can never arrive (unreliable channels: "
            "every seq since the first arrival that never came, up or down) · recovery figures are for the last fault "
            "(detect = fault start → first disconnect/retry; recover = fault end → next new message)",
            id="compare-note",
        )
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_table()
        self.set_interval(REFRESH_S, self.refresh_table)

    def refresh_table(self) -> None:
        """Rebuild the table from a fresh report (cells update in place)."""
        report = self.backend.report()
        title = self.query_one("#compare-title", Static)
        title.update(
            Text.assemble(
                (" compare ", "bold reverse"),
                f"  published {report['published']} messages in {report['duration_s']:.1f} s"
                if "published" in report  # a target's count of published messages is its own
                else f"  target mode: {report['duration_s']:.1f} s",
            )
        )
        table = self.query_one(DataTable)
        cols = columns(report)
        keys = [key for key, *_ in cols]
        if [str(c.value) for c in table.columns] != ["metric", *keys]:
            table.clear(columns=True)
            table.add_column("metric", key="metric")
            for key, label, _, _ in cols:
                table.add_column(Text(label, justify="right"), key=key)
        for row_key, label, cells in table_rows(report):
            values = [Text(label, style="bold" if not label.startswith(" ") else "")]
            values += [Text(cell, justify="right") for cell in cells]
            if row_key in table.rows:
                for column_key, value in zip(["metric", *keys], values, strict=False):
                    table.update_cell(row_key, column_key, value)
            else:
                table.add_row(*values, key=row_key)
