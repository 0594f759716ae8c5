"""A run's JSON report and message log turned into the series and tables of its HTML report. Pure.

Input: the report ``rtplay run --json`` writes (a single run, or ``{"variants": {...}}``) and,
optionally, the records of its message log (:mod:`rtplay.engine.message_log`'s format,
``at`` in seconds since the run started). Output: plain dataclasses of numbers and strings
that :mod:`rtplay.report.render` draws; nothing here knows about plotting, files or clocks.

From the log: one-way latency of every new arrival (binned to p50/p99/max per
:data:`LATENCY_BIN_S` when a channel has more than :data:`MAX_LATENCY_POINTS` of them),
reconnect / down / reset markers, the replay burst (what a client caught up on after a
reconnect), arrivals per second per channel and the fault bands. From the report: the final
figures, the recovery table, the browser's rows, the crowds' attempts/s and connects/s, health.
Which arrival is new (not a duplicate) is decided by :class:`rtplay.model.accounting.SeqTracker`,
the same model the live figures use.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rtplay.model.accounting import SeqTracker

#: Latency points drawn per channel, one per arrival; past it the channel is drawn as p50/p99/max
#: per bin instead. The report must stay under 5 MB offline and plotly.js alone is ~4.8 MB, so
#: the data gets ~150 KB: 8 channels × 600 points × ~15 bytes a point is ~72 KB. A report of
#: several runs (variants) shares the budget: each run gets its share (:func:`budget`).
MAX_LATENCY_POINTS = 600

#: Bins of a binned latency series at most (each three numbers): the same budget as above.
MAX_LATENCY_BINS = 200

#: The fewest points a channel is drawn with, however many runs share a report.
MIN_LATENCY_POINTS = 30

#: The finest bin of a binned latency series: fine enough to show a 1-s fault band's edges.
LATENCY_BIN_S = 0.1

#: Bin of the arrivals-per-second series.
ARRIVALS_BIN_S = 1.0

#: Markers (reconnects, downs, resets) drawn per transport; past it the rest are counted only.
MAX_MARKERS = 2_000

#: Unreliable channels: their losses are split up (while connected) / down.
UNRELIABLE = frozenset({("wt", "datagram"), ("rtc", "unreliable")})


class ReportInputError(ValueError):
    """A report or log that cannot be drawn: says which part and why."""


@dataclass
class Latency:
    """One channel's latency over time: every arrival (``binned`` False) or per-bin p50/p99/max."""

    at: list[float] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    p99: list[float] = field(default_factory=list)
    """Binned only: the bins' p99 (``ms`` then holds their p50)."""
    max: list[float] = field(default_factory=list)
    binned: bool = False


@dataclass
class Marker:
    """A connection event of one transport at ``at`` seconds."""

    at: float
    kind: str
    """``reconnect``, ``down`` or ``reset``."""
    text: str


@dataclass
class Band:
    """A fault's span: ``start``..``end`` seconds (equal for a one-shot fault)."""

    id: int
    text: str
    scope: str
    start: float
    end: float


@dataclass
class TransportSeries:
    """Everything drawn over time for one transport."""

    latency: dict[str, Latency] = field(default_factory=dict)
    replayed: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    """Per channel (at, latency ms) of the arrivals caught up on after a reconnect."""
    arrivals: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    """Per channel (bin start s, new arrivals per second)."""
    markers: list[Marker] = field(default_factory=list)
    markers_dropped: int = 0


@dataclass
class RunView:
    """One run (or one variant) ready to draw."""

    name: str
    report: dict[str, Any]
    transports: dict[str, TransportSeries]
    bands: list[Band]
    duration_s: float

    @property
    def has_log(self) -> bool:
        return any(s.latency for s in self.transports.values())


def runs_of(report: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(variant name, report) per run: ``[("", report)]`` for a run without variants."""
    if "variants" in report:
        variants = report["variants"]
        if not isinstance(variants, dict) or not variants:
            raise ReportInputError("report: 'variants' must map variant names to reports")
        runs = list(variants.items())
    else:
        runs = [("", dict(report))]
    for name, run in runs:
        if not isinstance(run, dict) or not isinstance(run.get("transports"), dict):
            raise ReportInputError(f"report{' variant ' + name if name else ''}: no 'transports' table "
                                   "(is this the JSON of `rtplay run --json`?)")
    return runs


def budget(runs: int) -> int:
    """Latency points per channel when ``runs`` runs with logs share one report: each run past
    the first also brings ~20 KB of layout and tables, so the share shrinks faster than 1/runs."""
    if runs <= 1:
        return MAX_LATENCY_POINTS
    return max(MIN_LATENCY_POINTS, MAX_LATENCY_POINTS // (2 * runs))


def build_view(name: str, report: dict[str, Any], records: Iterable[Mapping[str, Any]] = (),
               max_points: int = MAX_LATENCY_POINTS) -> RunView:
    """Series and bands of one run from its report and (optionally) its log records; a channel
    is drawn with at most ``max_points`` points (p50/p99/max bins past it)."""
    transports = {t: TransportSeries() for t in report["transports"]}
    builder = _LogReader(transports, max_points)
    for rec in records:
        builder.feed(rec)
    builder.finish()
    for transport, series in transports.items():  # the report's channel order: resumable first
        order = list(report["transports"][transport].get("channels") or ["main"])
        rank = {ch: i for i, ch in enumerate(order)}
        def key(ch: str, rank: dict[str, int] = rank) -> int:
            return rank.get(ch, len(rank))

        series.latency = {ch: series.latency[ch] for ch in sorted(series.latency, key=key)}
        series.replayed = {ch: series.replayed[ch] for ch in sorted(series.replayed, key=key)}
        series.arrivals = {ch: series.arrivals[ch] for ch in sorted(series.arrivals, key=key)}
    bands = builder.bands or bands_from_report(report)
    duration = float(report.get("duration_s") or 0.0)
    return RunView(name, report, transports, bands, duration)


def bands_from_report(report: Mapping[str, Any]) -> list[Band]:
    """Fault bands from the report's per-fault records (one per fault id)."""
    bands: dict[int, Band] = {}
    for rec in report.get("faults", []):
        fid = int(rec.get("id", len(bands) + 1))
        start = float(rec.get("start_s") or 0.0)
        end = rec.get("end_s")
        band = bands.setdefault(fid, Band(fid, str(rec.get("fault", "")), "all", start, start))
        band.end = max(band.end, float(end) if end is not None else float(report.get("duration_s") or start))
    return sorted(bands.values(), key=lambda b: b.start)


class _Channel:
    """Log reading state of one channel."""

    def __init__(self) -> None:
        self.tracker = SeqTracker()
        self.at: list[float] = []
        self.ms: list[float] = []
        self.bins: Counter[int] = Counter()
        self.catching_up = False
        self.replayed: tuple[list[float], list[float]] = ([], [])


class _LogReader:
    """Feeds log records into per-transport series."""

    def __init__(self, transports: dict[str, TransportSeries], max_points: int) -> None:
        self.max_points = max_points
        self.transports = transports
        self.channels: dict[tuple[str, str], _Channel] = {}
        self.bands: list[Band] = []
        self._open: dict[int, Band] = {}

    def feed(self, rec: Mapping[str, Any]) -> None:
        ev = rec.get("ev")
        if ev in ("fault_started", "fault_ended"):
            self._fault(rec, ev == "fault_started")
            return
        name = rec.get("tr")
        if not isinstance(name, str) or name not in self.transports or not isinstance(rec.get("at"), int | float):
            return
        at = float(rec["at"])
        if ev == "msg":
            self._arrival(name, str(rec.get("ch", "main")), rec, at)
        elif ev == "up" and int(rec.get("conn") or 0) > 1:
            self._marker(name, Marker(at, "reconnect", f"{name} reconnected (connection {rec['conn']})"))
            for (tr, _), ch in self.channels.items():
                ch.catching_up = ch.catching_up or tr == name
        elif ev == "down":
            self._marker(name, Marker(at, "down", f"{name} lost its connection"))
        elif ev == "reset":
            self._marker(name, Marker(at, "reset", f"{name}/{rec.get('ch')}: reset, seqs before "
                                                   f"{rec.get('first')} are gone"))

    def _channel(self, name: str, ch: str) -> _Channel:
        return self.channels.setdefault((name, ch), _Channel())

    def _arrival(self, name: str, ch: str, rec: Mapping[str, Any], at: float) -> None:
        state = self._channel(name, ch)
        seq, lat = rec.get("seq"), rec.get("lat")
        if not isinstance(seq, int) or not isinstance(lat, int | float) or not state.tracker.see(seq):
            return
        state.at.append(at)
        state.ms.append(max(0.0, float(lat)))
        state.bins[math.floor(at / ARRIVALS_BIN_S)] += 1
        if state.catching_up:
            pub = rec.get("pub")
            if isinstance(pub, int) and seq < pub:  # behind the hub: part of the replay burst
                if len(state.replayed[0]) >= self.max_points // 3:  # a burst's shape needs few points
                    return
                state.replayed[0].append(drawn_s(at))
                state.replayed[1].append(drawn_ms(float(lat)))
            else:
                state.catching_up = False

    def _marker(self, name: str, marker: Marker) -> None:
        series = self.transports[name]
        if len(series.markers) < MAX_MARKERS:
            series.markers.append(marker)
        else:
            series.markers_dropped += 1

    def _fault(self, rec: Mapping[str, Any], started: bool) -> None:
        fid, at = rec.get("id"), rec.get("at")
        if not isinstance(fid, int) or not isinstance(at, int | float):
            return
        if started:
            band = Band(fid, str(rec.get("text", "")), str(rec.get("scope", "all")), float(at), float(at))
            self.bands.append(band)
            if not rec.get("one_shot"):
                self._open[fid] = band
        elif fid in self._open:
            self._open.pop(fid).end = float(at)

    def finish(self) -> None:
        for (name, ch), state in self.channels.items():
            series = self.transports[name]
            series.latency[ch] = latency_series(state.at, state.ms, self.max_points)
            series.replayed[ch] = state.replayed
            series.arrivals[ch] = arrivals_series(state.bins, max(1, self.max_points // 3))
        for band in self._open.values():  # still on at the end of the log
            band.end = max(band.end, max((s.at[-1] for s in self.channels.values() if s.at), default=band.end))


def latency_series(at: list[float], ms: list[float], max_points: int = MAX_LATENCY_POINTS) -> Latency:
    """Every point, or p50/p99/max per bin (at least :data:`LATENCY_BIN_S` wide, at most
    ``max_points`` / 3 and :data:`MAX_LATENCY_BINS` of them) past ``max_points``."""
    if len(at) <= max_points:
        return Latency([drawn_s(t) for t in at], [drawn_ms(v) for v in ms])
    count = max(1, min(MAX_LATENCY_BINS, max_points // 3))
    width = max(LATENCY_BIN_S, (at[-1] - at[0]) / count * 1.001)
    bins: dict[int, list[float]] = {}
    for t, v in zip(at, ms, strict=False):
        bins.setdefault(math.floor(t / width), []).append(v)
    out = Latency(binned=True)
    for b in sorted(bins):
        values = sorted(bins[b])
        out.at.append(drawn_s(b * width))
        out.ms.append(drawn_ms(_pick(values, 50)))
        out.p99.append(drawn_ms(_pick(values, 99)))
        out.max.append(drawn_ms(values[-1]))
    return out


def drawn_s(t: float) -> float:
    """A time as drawn: to the millisecond (a chart of seconds shows no finer)."""
    return round(t, 3)


def drawn_ms(v: float) -> float:
    """A latency as drawn: three significant digits (the figures' tables keep full precision)."""
    return float(f"{v:.3g}")


def _pick(values: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of sorted ``values``."""
    return values[max(0, math.ceil(len(values) * p / 100) - 1)]


def arrivals_series(bins: Mapping[int, int], max_bins: int = MAX_LATENCY_BINS) -> tuple[list[float], list[float]]:
    """(bin start, per second) with empty bins between the first and last filled as 0; at most
    ``max_bins`` of them (neighbouring :data:`ARRIVALS_BIN_S` bins merged past it)."""
    if not bins:
        return [], []
    lo, hi = min(bins), max(bins)
    k = max(1, math.ceil((hi - lo + 1) / max(1, max_bins)))
    starts = range(lo, hi + 1, k)
    xs = [drawn_s(b * ARRIVALS_BIN_S) for b in starts]
    return xs, [sum(bins.get(b + i, 0) for i in range(k)) / (k * ARRIVALS_BIN_S) for b in starts]


def final_rows(report: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(transport[/channel], figures) per row of the final table, as ``rtplay run`` prints it."""
    rows: list[tuple[str, dict[str, Any]]] = []
    for name, entry in report.get("transports", {}).items():
        channels = entry.get("channels")
        if not channels:
            rows.append((name, entry))
            continue
        for i, (channel, stats) in enumerate(channels.items()):
            shared = {k: entry.get(k) for k in ("state", "connects", "reconnects", "downtime_s")} if i == 0 else {}
            rows.append((f"{name}/{channel}", dict(stats) | shared))
    return rows


def unreliable_losses(report: Mapping[str, Any]) -> list[tuple[str, int, int]]:
    """(transport/channel, lost while connected, lost while down) of every unreliable channel."""
    out = []
    for name, entry in report.get("transports", {}).items():
        for ch, stats in (entry.get("channels") or {}).items():
            if (name, ch) in UNRELIABLE:
                out.append((f"{name}/{ch}", int(stats.get("lost_while_connected") or 0),
                            int(stats.get("lost_while_down") or 0)))
    return out


def crowd_series(runs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[tuple[str, list[list[float]]]]]:
    """``{"attempts_per_s"|"connects_per_s": [(label, [[s, per s], …]), …]}`` over every run's crowds,
    labelled ``variant transport (policy)``, so the variants share one chart."""
    out: dict[str, list[tuple[str, list[list[float]]]]] = {"attempts_per_s": [], "connects_per_s": []}
    for variant, run in runs:
        for name, entry in run["transports"].items():
            crowd = entry.get("crowd")
            if not isinstance(crowd, dict):
                continue
            policy = crowd.get("policy") or ""
            label = " ".join(p for p in (variant, name, f"({policy})" if policy else "") if p)
            for key, series in out.items():
                series.append((label, list(crowd.get(key) or [])))
    return out


def health_rows(report: Mapping[str, Any]) -> tuple[list[tuple[str, dict[str, float | None]]], float | None]:
    """([(side, {p50, p99, max}) for both loops and the publisher's slip], overload threshold ms)."""
    health = report.get("health") or {}
    rows: list[tuple[str, dict[str, float | None]]] = []
    for side, key in (("server loop lag", "server_loop_lag_ms"), ("client loop lag", "client_loop_lag_ms")):
        figures = health.get(key)
        if isinstance(figures, dict):
            rows.append((side, {p: figures.get(p) for p in ("p50", "p99", "max")}))
    if health.get("publisher_slip_ms_max") is not None:
        rows.append(("publisher slip", {"p50": None, "p99": None, "max": health["publisher_slip_ms_max"]}))
    threshold = health.get("threshold_ms")
    return rows, None if threshold is None else float(threshold)


def comparison_rows(runs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(transport, variant, key figures) for the variants' side-by-side table."""
    rows = []
    names = sorted({t for _, run in runs for t in run["transports"]})
    for name in names:
        for variant, run in runs:
            entry = run["transports"].get(name)
            if entry is None:
                continue
            crowd = entry.get("crowd") or {}
            rows.append((name, variant, {
                "delivered": entry.get("delivered"), "lost": entry.get("lost"),
                "p99_ms": (entry.get("latency_ms") or {}).get("p99"), "reconnects": entry.get("reconnects"),
                "downtime_s": entry.get("downtime_s"), "peak_attempts_per_s": crowd.get("peak_attempts_per_s"),
            }))
    return rows


#: The server's load series (``server_load``) drawn: accepts/s, concurrent connections, loop lag.
LOAD_SERIES = ("accepts_per_s", "concurrent", "loop_lag_ms")


def _peaks(points: list[list[float]], most: int) -> tuple[list[float], list[float]]:
    """At most ``most`` points: the largest value of each run of neighbouring bins (peaks stay)."""
    k = max(1, math.ceil(len(points) / max(1, most)))
    xs = [points[i][0] for i in range(0, len(points), k)]
    ys = [max(p[1] for p in points[i:i + k]) for i in range(0, len(points), k)]
    return xs, ys


def load_series(runs: list[tuple[str, dict[str, Any]]]) -> dict[str, list[tuple[str, list[float], list[float]]]]:
    """Per :data:`LOAD_SERIES` key, (variant, seconds from the load's first bin, values) of each
    run with ``server_load`` (crowds), at most :data:`MAX_LATENCY_BINS` points (peaks kept)."""
    out: dict[str, list[tuple[str, list[float], list[float]]]] = {key: [] for key in LOAD_SERIES}
    for variant, run in runs:
        load = run.get("server_load")
        if not isinstance(load, dict):
            continue
        series = {key: [p for p in load.get(key) or [] if isinstance(p, list) and len(p) == 2] for key in LOAD_SERIES}
        starts = [points[0][0] for points in series.values() if points]
        if not starts:
            continue
        origin = min(starts)
        for key, points in series.items():
            xs, ys = _peaks([[p[0] - origin, p[1]] for p in points], MAX_LATENCY_BINS)
            out[key].append((variant, [drawn_s(x) for x in xs], ys))
    return out
