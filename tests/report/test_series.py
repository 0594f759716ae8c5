"""What the HTML report draws, computed from a report and its log without any plotting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rtplay.report.series import (
    MAX_LATENCY_BINS,
    MAX_LATENCY_POINTS,
    ReportInputError,
    arrivals_series,
    bands_from_report,
    build_view,
    crowd_series,
    health_rows,
    latency_series,
    load_series,
    runs_of,
    unreliable_losses,
)
from tests.report.conftest import recorded


def report_of(*names: str) -> dict[str, Any]:
    return {"published": 0, "duration_s": 10.0, "transports": {n: {} for n in names}, "faults": []}


def msg(tr: str, seq: int, at: float, lat: float, pub: int, ch: str = "main") -> dict[str, Any]:
    return {"ev": "msg", "tr": tr, "ch": ch, "seq": seq, "lat": lat, "b": 0, "at": at, "conn": 1, "pub": pub}


def test_every_new_arrival_is_one_latency_point_and_a_duplicate_none() -> None:
    records = [msg("ws", 1, 0.1, 2.0, 1), msg("ws", 2, 0.2, 3.0, 2), msg("ws", 2, 0.3, 9.0, 2),
               msg("ws", 3, 1.5, 4.0, 3)]
    view = build_view("", report_of("ws"), records)
    lat = view.transports["ws"].latency["main"]
    assert (lat.at, lat.ms, lat.binned) == ([0.1, 0.2, 1.5], [2.0, 3.0, 4.0], False)
    assert view.transports["ws"].arrivals["main"] == ([0.0, 1.0], [2.0, 1.0])


def test_a_long_channel_is_drawn_as_p50_p99_max_per_bin_within_the_bin_budget() -> None:
    n = MAX_LATENCY_POINTS * 10
    at = [i * 0.01 for i in range(n)]
    ms = [float(i % 100) for i in range(n)]  # 0..99 in every second
    lat = latency_series(at, ms)
    assert lat.binned and len(lat.at) <= MAX_LATENCY_BINS
    assert len(lat.at) == len(lat.ms) == len(lat.p99) == len(lat.max)
    assert max(lat.max) == 99.0 and all(p50 <= p99 <= mx for p50, p99, mx in zip(lat.ms, lat.p99, lat.max, strict=False))


def test_the_replay_burst_is_what_a_client_caught_up_on_after_a_reconnect() -> None:
    records = [
        msg("sse", 1, 1.0, 1.0, 1),
        {"ev": "down", "tr": "sse", "at": 1.5, "conn": 1, "pub": 1},
        {"ev": "up", "tr": "sse", "at": 4.0, "conn": 2, "since": 1, "pub": 4},
        msg("sse", 2, 4.01, 3000.0, 4), msg("sse", 3, 4.02, 2000.0, 4), msg("sse", 4, 4.03, 1000.0, 4),
        msg("sse", 5, 5.0, 1.0, 5),
    ]
    series = build_view("", report_of("sse"), records).transports["sse"]
    assert series.replayed["main"] == ([4.01, 4.02], [3000.0, 2000.0])  # seq 4 was the hub's newest: caught up
    assert [(m.at, m.kind) for m in series.markers] == [(1.5, "down"), (4.0, "reconnect")]


def test_fault_bands_come_from_the_log_and_a_one_shot_fault_is_an_instant() -> None:
    drop = {"id": 1, "text": "drop on all", "scope": "all", "one_shot": True}
    outage = {"id": 2, "text": "outage 3s on all", "scope": "all", "one_shot": False}
    records = [
        {"ev": "fault_started", **drop, "at": 2.0, "published": 20},
        {"ev": "fault_ended", **drop, "at": 2.0, "published": 20},
        {"ev": "fault_started", **outage, "at": 5.0, "published": 50},
        {"ev": "fault_ended", **outage, "at": 8.0, "published": 80},
    ]
    bands = build_view("", report_of("ws"), records).bands
    assert [(b.id, b.start, b.end) for b in bands] == [(1, 2.0, 2.0), (2, 5.0, 8.0)]


def test_without_a_log_the_bands_come_from_the_reports_fault_records() -> None:
    report = report_of("ws", "sse") | {"faults": [
        {"id": 1, "fault": "outage 3s on all", "transport": "ws", "start_s": 5.0, "end_s": 8.0},
        {"id": 1, "fault": "outage 3s on all", "transport": "sse", "start_s": 5.0, "end_s": 8.1},
    ]}
    assert [(b.id, b.start, b.end) for b in bands_from_report(report)] == [(1, 5.0, 8.1)]
    assert not build_view("", report).has_log


def test_empty_seconds_between_arrivals_count_zero() -> None:
    assert arrivals_series({2: 3, 5: 1}) == ([2.0, 3.0, 4.0, 5.0], [3.0, 0.0, 0.0, 1.0])


def test_a_file_that_is_not_a_report_says_so() -> None:
    with pytest.raises(ReportInputError, match="no 'transports'"):
        runs_of({"ev": "msg"})
    with pytest.raises(ReportInputError, match="variants"):
        runs_of({"variants": []})
    assert [n for n, _ in runs_of({"variants": {"a": report_of("ws"), "b": report_of("ws")}})] == ["a", "b"]


def test_crowds_of_every_variant_share_one_chart_labelled_by_policy() -> None:
    crowd = {"policy": "exponential:full", "attempts_per_s": [[0.0, 5.0], [0.5, 40.0]], "connects_per_s": [[0.0, 5.0]]}
    runs = [("a", {"transports": {"ws": {"crowd": crowd}}}), ("b", {"transports": {"ws": {}}})]
    series = crowd_series(runs)
    assert series["attempts_per_s"] == [("a ws (exponential:full)", [[0.0, 5.0], [0.5, 40.0]])]


def test_the_recorded_run_has_its_faults_reconnects_and_losses(tmp_path: Path) -> None:
    run = recorded("run20", tmp_path)
    view = build_view("", run.report, run.records)
    assert [b.text for b in view.bands] == ["drop on all", "outage 3s on all"]
    assert view.bands[1].end - view.bands[1].start == pytest.approx(3.0, abs=0.2)
    for name, series in view.transports.items():
        delivered = {ch: len(lat.at) for ch, lat in series.latency.items()}
        entry = run.report["transports"][name]
        expected = {ch: c["delivered"] for ch, c in entry["channels"].items()} if "channels" in entry else {
            "main": entry["delivered"]}
        assert delivered == expected, name  # one point per delivered message
        assert sum(1 for m in series.markers if m.kind == "reconnect") == entry["reconnects"], name
    assert any(series.replayed["main"][0] for series in view.transports.values() if "main" in series.replayed)
    losses = dict((name, (up, down)) for name, up, down in unreliable_losses(run.report))
    wt = run.report["transports"]["wt"]["channels"]["datagram"]
    assert losses["wt/datagram"] == (wt["lost_while_connected"], wt["lost_while_down"])
    rows, threshold = health_rows(run.report)
    assert [side for side, _ in rows] == ["server loop lag", "client loop lag", "publisher slip"]
    assert threshold == run.report["health"]["threshold_ms"]


def test_the_servers_load_is_drawn_from_its_first_bin_with_its_peaks_kept() -> None:
    load = {"accepts_per_s": [[500.0 + i / 10, 900.0 if i == 1234 else 5.0] for i in range(5000)],
            "concurrent": [[500.0, 10], [500.1, 12]], "loop_lag_ms": []}
    series = load_series([("a", {"transports": {}, "server_load": load}), ("b", {"transports": {}})])
    (variant, xs, ys), = series["accepts_per_s"]
    assert variant == "a" and xs[0] == 0.0 and len(xs) <= MAX_LATENCY_BINS
    assert max(ys) == 900.0 and min(ys) == 5.0  # the one busy bin survives the thinning
    assert series["concurrent"] == [("a", [0.0, 0.1], [10, 12])]
