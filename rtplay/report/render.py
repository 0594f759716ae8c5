"""The HTML report: :mod:`rtplay.report.series`' views drawn with plotly, in one offline file.

plotly.js is embedded once (``include_plotlyjs=True`` on the first chart, ``False`` after), so the
file opens with no network at all; every other chart is a ``<div>`` and its data. The tables
(final figures, recovery, browser, comparison) are plain HTML. The accounting legend is passed
in (the CLI gives the one its table prints), so the report never words a figure differently.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go  # type: ignore[import-untyped]  # plotly ships no type hints
from plotly.subplots import make_subplots  # type: ignore[import-untyped]

from rtplay.report.series import (
    LOAD_SERIES,
    MIN_LATENCY_POINTS,
    Band,
    RunView,
    budget,
    build_view,
    comparison_rows,
    crowd_series,
    final_rows,
    health_rows,
    load_series,
    runs_of,
    unreliable_losses,
)

#: The most a report may weigh: small enough to attach to a CI run or a review. plotly.js is
#: ~4.8 MB of it; past this the series are drawn coarser (see :func:`build_report_html`).
MAX_REPORT_BYTES = 5_000_000

#: Columns of the final table: (title, key in a row's figures).
FINAL_COLUMNS = (
    ("state", "state"), ("delivered", "delivered"), ("pend", "pending"), ("lost", "lost"),
    ("up", "lost_while_connected"), ("down", "lost_while_down"), ("reset", "lost_to_reset"),
    ("dup", "duplicates"), ("ooo", "out_of_order"), ("p50", "latency_ms.p50"), ("p99", "latency_ms.p99"),
    ("max", "latency_ms.max"), ("rec", "reconnects"), ("down s", "downtime_s"), ("B/msg", "wire_bytes_per_msg"),
)

#: Columns of the recovery table.
RECOVERY_COLUMNS = (
    ("#", "id"), ("fault", "fault"), ("transport", "transport"), ("detect s", "time_to_detect_s"),
    ("recover s", "time_to_recover_s"), ("lost", "lost"), ("reset", "lost_to_reset"),
    ("dup", "duplicates"), ("replayed", "replayed"),
)

#: A transport's channels on its latency subplot: the first blue, the second (unreliable) teal.
CHANNEL_COLORS = ("#636efa", "#00a383")

MARKER_STYLE = {
    "reconnect": {"symbol": "triangle-up", "color": "#2ca02c"},
    "down": {"symbol": "x", "color": "#d62728"},
    "reset": {"symbol": "diamond", "color": "#9467bd"},
}

#: The charts' look: small on purpose. plotly's default template is ~7 KB of JSON repeated in
#: every chart; with plotly.js at ~4.8 MB of the 5 MB a report may weigh, that adds up.
TEMPLATE = {
    "layout": {
        "plot_bgcolor": "#eef1f7", "paper_bgcolor": "white", "font": {"family": "system-ui, sans-serif"},
        "xaxis": {"gridcolor": "white", "zeroline": False}, "yaxis": {"gridcolor": "white", "zeroline": False},
        "colorway": ["#636efa", "#EF553B", "#00cc96", "#ab63fa", "#FFA15A", "#19d3f3", "#FF6692", "#B6E880"],
        "hovermode": "closest",
    }
}

log = logging.getLogger(__name__)

_INDENT = re.compile(r"\s{2,}")

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.legend dt { font-weight: bold; } .legend dd { margin: 0 0 .3em 2em; }
.failed { color: #b00; } .ok { color: #070; }
"""


@dataclass
class Page:
    """The report under construction: HTML parts in order; plotly.js goes in with the first chart."""

    title: str
    parts: list[str] = field(default_factory=list)
    charts: int = 0

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def text(self, text: str) -> None:
        self.parts.append(f"<p>{html.escape(text)}</p>")

    def chart(self, fig: go.Figure) -> None:
        fig.layout.template = TEMPLATE  # replaces plotly's default (update_layout would merge into it)
        part = fig.to_html(full_html=False, include_plotlyjs=self.charts == 0,
                           config={"displaylogo": False, "responsive": True})
        if self.charts:  # plotly indents its call by ~200 spaces a chart; plotly.js itself is left alone
            part = _INDENT.sub(" ", part)
        self.parts.append(part)
        self.charts += 1

    def table(self, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")

    def html(self) -> str:
        return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(self.title)}</title>"
                f"<style>{CSS}</style></head><body>{''.join(self.parts)}</body></html>\n")


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value < 100 else f"{value:.0f}"
    return str(value)


def _get(figures: dict[str, Any], dotted: str) -> object:
    node: Any = figures
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _bands(fig: go.Figure, bands: list[Band]) -> None:
    """Each fault as a shaded band (a dotted line for a one-shot fault) from the top of the chart
    to its bottom, across every subplot (they share the x axis): one shape and one label per
    fault, not one per subplot, which keeps the file small."""
    for band in bands:
        span = {"xref": "x", "yref": "paper", "y0": 0, "y1": 1, "x0": band.start}
        if band.end - band.start > 1e-3:
            fig.add_shape(type="rect", x1=band.end, fillcolor="orange", opacity=0.2, line_width=0, layer="below",
                          **span)
        else:
            fig.add_shape(type="line", x1=band.start, line={"dash": "dot", "color": "orange", "width": 2}, **span)
        fig.add_annotation(x=band.start, xref="x", y=1, yref="paper", yanchor="bottom", xanchor="left",
                           yshift=16, text=f"#{band.id} {band.text}", showarrow=False, font={"size": 11})


def latency_chart(view: RunView) -> go.Figure:
    """One-way latency per transport over time, faults shaded, markers and the replay burst."""
    names = list(view.transports)
    fig = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=names, vertical_spacing=0.04)
    for row, name in enumerate(names, start=1):
        series = view.transports[name]
        floor = min((min(s.ms) for s in series.latency.values() if s.ms), default=1.0)
        for i, (ch, lat) in enumerate(series.latency.items()):
            label = name if ch == "main" else f"{name}/{ch}"
            color = CHANNEL_COLORS[i % len(CHANNEL_COLORS)]
            fig.add_trace(go.Scatter(x=lat.at, y=lat.ms, mode="markers" if not lat.binned else "lines",
                                     marker={"size": 3, "color": color}, name=label + (" p50" if lat.binned else "")),
                          row=row, col=1)
            if lat.binned:
                fig.add_trace(go.Scatter(x=lat.at, y=lat.p99, mode="lines", name=label + " p99"), row=row, col=1)
            xs, ys = series.replayed.get(ch, ([], []))
            if xs:
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{label} replay burst",
                                           marker={"size": 6, "symbol": "circle-open", "color": "#ff7f0e"}),
                              row=row, col=1)
        for kind, style in MARKER_STYLE.items():
            marks = [m for m in series.markers if m.kind == kind]
            if marks:
                fig.add_trace(go.Scatter(x=[round(m.at, 3) for m in marks], y=[floor] * len(marks), mode="markers",
                                         name=f"{name} {kind}", hoverinfo="name+x",
                                         marker={"size": 9, **style}), row=row, col=1)
        fig.update_yaxes(type="log", title_text="ms", row=row, col=1)
    _bands(fig, view.bands)
    fig.update_xaxes(title_text="seconds since the run started", row=len(names), col=1)
    fig.update_layout(height=230 * len(names) + 80, title="one-way latency (log scale)", showlegend=True)
    return fig


def arrivals_chart(view: RunView) -> go.Figure:
    """New arrivals per second per transport and channel."""
    fig = go.Figure()
    for name, series in view.transports.items():
        for ch, (xs, ys) in series.arrivals.items():
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv",
                                     name=name if ch == "main" else f"{name}/{ch}"))
    _bands(fig, view.bands)
    fig.update_layout(title="arrivals per second", xaxis_title="seconds since the run started",
                      yaxis_title="new messages / s", height=380)
    return fig


def _label(variant: str, what: str) -> str:
    return f"{variant} {what}" if variant else what


def losses_chart(runs: Sequence[tuple[str, dict[str, Any]]]) -> go.Figure | None:
    """Unreliable channels' losses, up (while connected) and down; every run's side by side."""
    rows = [(_label(v, ch), up, down) for v, report in runs for ch, up, down in unreliable_losses(report)]
    if not rows:
        return None
    labels = [r[0] for r in rows]
    fig = go.Figure([go.Bar(x=labels, y=[r[1] for r in rows], name="lost while connected (up)"),
                     go.Bar(x=labels, y=[r[2] for r in rows], name="lost while down")])
    fig.update_layout(barmode="stack", title="unreliable channels: messages lost", yaxis_title="messages", height=340)
    return fig


def health_chart(runs: Sequence[tuple[str, dict[str, Any]]]) -> go.Figure | None:
    """Both loops' lag and the publisher's slip, with the overload threshold drawn; every run's."""
    rows: list[tuple[str, dict[str, float | None]]] = []
    threshold: float | None = None
    overloaded = []
    for variant, report in runs:
        sides, limit = health_rows(report)
        rows += [(_label(variant, side), figures) for side, figures in sides]
        threshold = limit if limit is not None else threshold
        overloaded.append(f"{_label(variant, '')}{_cell((report.get('health') or {}).get('overloaded_s'))} s")
    if not rows:
        return None
    fig = go.Figure([go.Bar(x=[side for side, _ in rows], y=[fig.get(p) for _, fig in rows], name=p)
                     for p in ("p50", "p99", "max")])
    if threshold is not None:
        fig.add_hline(y=threshold, line_dash="dash", line_color="red",
                      annotation_text=f"overload threshold {threshold:g} ms")
    fig.update_layout(barmode="group", yaxis_title="ms", height=340,
                      title=f"health: loop lag and publisher slip (overloaded {', '.join(overloaded)})")
    return fig


def crowd_chart(series: list[tuple[str, list[list[float]]]], what: str) -> go.Figure | None:
    """One line per crowd (variant, transport, policy) of ``what`` per second."""
    if not any(points for _, points in series):
        return None
    fig = go.Figure([go.Scatter(x=[p[0] for p in points], y=[p[1] for p in points], mode="lines", name=label)
                     for label, points in series])
    fig.update_layout(title=f"crowds: {what} per second", xaxis_title="seconds since the run started",
                      yaxis_title=f"{what} / s", height=340)
    return fig


def load_chart(runs: list[tuple[str, dict[str, Any]]]) -> go.Figure | None:
    """The server's accepts/s, concurrent connections and loop lag over a crowd run (every run's)."""
    series = load_series(runs)
    if not any(xs for runs_ in series.values() for _, xs, _ in runs_):
        return None
    titles = ("accepts per second", "concurrent connections", "server loop lag (ms)")
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, subplot_titles=titles, vertical_spacing=0.08)
    for row, key in enumerate(LOAD_SERIES, start=1):
        for variant, xs, ys in series[key]:
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line_shape="hv", name=_label(variant, key)),
                          row=row, col=1)
    fig.update_xaxes(title_text="seconds from the first bin", row=3, col=1)
    fig.update_layout(title="the server's load (100 ms bins, peaks kept)", height=620)
    return fig


def _final_table(page: Page, report: dict[str, Any]) -> None:
    rows = [[name, *(_get(f, key) for _, key in FINAL_COLUMNS)] for name, f in final_rows(report)]
    page.table(["transport", *(t for t, _ in FINAL_COLUMNS)], rows)


def run_section(page: Page, view: RunView, single: bool = True) -> None:
    """One run's charts and tables (``single`` False: its losses and health are drawn with the
    other runs', on shared charts)."""
    report = view.report
    notes = [f"published {report.get('published')} messages in {_cell(report.get('duration_s'))} s"]
    if report.get("settled") is False:
        notes.append("not settled: clients were still catching up when the settle timed out")
    if report.get("partial"):
        notes.append("partial: the run was interrupted")
    if report.get("from_log"):
        notes.append("figures rebuilt from the message log alone: per-fault recovery and health are not in a log")
    page.text("; ".join(notes))
    if view.has_log:
        page.chart(latency_chart(view))
        page.chart(arrivals_chart(view))
    else:
        page.text("no message log given (--log): latency and arrivals over time are not drawn")
    if single and (fig := losses_chart([("", report)])) is not None:
        page.chart(fig)
    page.heading("final figures", 3)
    _final_table(page, report)
    page.heading("recovery per fault", 3)
    page.text("detect = fault start → client notices; recover = fault end → next message")
    faults = report.get("faults") or []
    page.table([t for t, _ in RECOVERY_COLUMNS], [[f.get(k) for _, k in RECOVERY_COLUMNS] for f in faults])
    if isinstance(report.get("browser"), dict):
        page.heading("the browser (headless Chromium on the page), same columns", 3)
        _final_table(page, report["browser"])
    if single and (fig := health_chart([("", report)])) is not None:
        page.chart(fig)


def legend_section(page: Page, legend: Sequence[tuple[str, str]]) -> None:
    """The accounting legend, as ``rtplay run`` prints it under its table."""
    page.heading("legend", 3)
    items = "".join(f"<dt>{html.escape(n)}</dt><dd>{html.escape(t)}</dd>" for n, t in legend)
    page.parts.append(f"<dl class='legend'>{items}</dl>")


def render_html(views: list[RunView], legend: Sequence[tuple[str, str]] = (),
                comparisons: Sequence[tuple[str, str | None]] = (), title: str = "rtplay run") -> str:
    """The whole report. ``comparisons``: (comparison, failure message or None) as checked by the run."""
    page = Page(title)
    page.heading(title, 1)
    for view in views:
        if view.name:
            page.heading(f"variant {view.name}")
        run_section(page, view, single=len(views) == 1)
    runs = [(v.name, v.report) for v in views]
    if len(views) > 1:
        page.heading("every variant")
        for fig in (losses_chart(runs), health_chart(runs)):
            if fig is not None:
                page.chart(fig)
    crowds = crowd_series(runs)
    for what, key in (("attempts", "attempts_per_s"), ("connects", "connects_per_s")):
        if (fig := crowd_chart(crowds[key], what)) is not None:
            page.chart(fig)
    if (fig := load_chart(runs)) is not None:
        page.chart(fig)
    loads = [(v.name, v.report["server_load"]) for v in views if isinstance(v.report.get("server_load"), dict)]
    if loads:
        page.heading("server load", 3)
        keys = [k for k in loads[0][1] if not isinstance(loads[0][1][k], dict | list)]  # the series are drawn above
        page.table(["figure", *(name or "value" for name, _ in loads)], [[k, *(load.get(k) for _, load in loads)]
                                                                          for k in keys])
    if len(views) > 1:
        page.heading("comparison")
        keys = ["delivered", "lost", "p99_ms", "reconnects", "downtime_s", "peak_attempts_per_s"]
        rows = [[t, v, *(f[k] for k in keys)] for t, v, f in comparison_rows(runs)]
        page.table(["transport", "variant", *keys], rows)
    if comparisons:
        page.table(["comparison", "result"], [[c, "held" if m is None else f"FAILED: {m}"] for c, m in comparisons])
    if legend:
        legend_section(page, legend)
    return page.html()


def build_report_html(report: dict[str, Any], records: Mapping[str, Sequence[dict[str, Any]]] | None = None,
                      legend: Sequence[tuple[str, str]] = (), comparisons: Sequence[tuple[str, str | None]] = (),
                      title: str = "rtplay run") -> str:
    """The HTML of ``report`` (a run's or a variants' JSON); ``records``: each run's log records by
    variant name (``""`` for a run without variants, or the only run)."""
    runs = runs_of(report)
    logs = dict(records or {})
    if len(runs) == 1 and "" in logs:
        logs[runs[0][0]] = logs[""]
    points = budget(sum(1 for name, _ in runs if logs.get(name)))
    while True:  # coarser series until the file fits (many variants, each with its log)
        views = [build_view(name, run, logs.get(name, ()), points) for name, run in runs]
        text = render_html(views, legend, comparisons, title)
        if len(text.encode()) < MAX_REPORT_BYTES or points <= MIN_LATENCY_POINTS:
            return text
        log.info("report over %d bytes with %d points a channel: drawing coarser", MAX_REPORT_BYTES, points)
        points = max(MIN_LATENCY_POINTS, points // 2)
