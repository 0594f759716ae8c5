"""The server's load meter: accepts per second, concurrent connections and loop lag per
100 ms bin, with times passed in."""

from __future__ import annotations

import asyncio
import builtins

import pytest

from servers.core.load import LAG_PROBE_S, MAX_BINS, BinSeries, LoadMeter, probe_loop_lag


def test_accepts_are_counted_per_bin_and_reported_per_second() -> None:
    meter = LoadMeter()
    for t in (10.00, 10.02, 10.05, 10.25):
        meter.accepted(t)
    series = meter.series()
    assert series["accepts_per_s"] == [[10.0, 30.0], [10.2, 10.0]]  # 3 in one 100 ms bin = 30/s
    assert series["peak_accepts_per_s"] == 30.0
    assert series["concurrent_now"] == 4


def test_a_bin_boundary_is_exact_where_floor_division_is_not() -> None:
    """``2.0 // 0.1`` is 19.0: an accept at 2.0 s belongs to the bin starting at 2.0 s."""
    meter = LoadMeter()
    meter.accepted(2.0)
    assert meter.series()["accepts_per_s"] == [[2.0, 10.0]]


def test_concurrency_peaks_per_bin_and_never_goes_below_zero() -> None:
    meter = LoadMeter()
    meter.accepted(1.00)
    meter.accepted(1.01)
    meter.accepted(1.02)
    meter.closed(1.03)
    meter.closed(1.15)
    meter.closed(1.16)
    meter.closed(1.17)  # one close too many (a connection closed twice): still 0, not -1
    series = meter.series()
    assert series["concurrent"] == [[1.0, 3.0], [1.1, 1.0]]  # the most live at once in each bin
    assert series["peak_concurrent"] == 3
    assert series["concurrent_now"] == 0


def test_loop_lag_keeps_the_worst_per_bin_in_milliseconds() -> None:
    meter = LoadMeter()
    meter.lag(5.01, 0.002)
    meter.lag(5.05, 0.040)
    meter.lag(5.09, 0.001)
    meter.lag(5.31, 0.0)
    series = meter.series()
    assert series["loop_lag_ms"] == [[5.0, 40.0], [5.3, 0.0]]
    assert series["max_loop_lag_ms"] == 40.0


def test_since_keeps_only_the_recent_bins_but_peaks_cover_the_whole_run() -> None:
    meter = LoadMeter()
    for _ in range(5):
        meter.accepted(1.0)
    meter.accepted(9.0)
    recent = meter.series(since=8.0)
    assert recent["accepts_per_s"] == [[9.0, 10.0]]
    assert recent["peak_accepts_per_s"] == 10.0  # from the bins shown
    assert recent["peak_concurrent"] == 6  # over the whole run


def test_an_idle_meter_reports_zeros_not_errors() -> None:
    series = LoadMeter().series()
    assert series["peak_accepts_per_s"] == 0.0 and series["peak_concurrent"] == 0
    assert series["max_loop_lag_ms"] == 0.0 and series["accepts_per_s"] == []


def test_every_series_is_bounded_and_forgets_its_oldest_bins_first() -> None:
    meter = LoadMeter()
    for b in range(MAX_BINS + 5):
        t = b * 0.1
        meter.accepted(t)
        meter.lag(t, 0.001)
    assert len(meter.accepts) == MAX_BINS
    assert len(meter.peak_concurrent) == MAX_BINS
    assert len(meter.lag_ms) == MAX_BINS
    assert min(meter.accepts) == 5  # bins 0-4 went first
    assert max(meter.accepts) == MAX_BINS + 4


def test_a_full_series_forgets_its_oldest_bin_without_sorting_them_all(monkeypatch: pytest.MonkeyPatch) -> None:
    """After an hour up every series is full: each new bin must not sort 36,000 keys."""
    meter = LoadMeter()
    for b in range(MAX_BINS):
        meter.lag(b * 0.1, 0.001)
    sorts: list[int] = []

    def counted(keys: dict[int, float]) -> list[int]:
        sorts.append(1)
        return builtins.sorted(keys)

    monkeypatch.setattr("servers.core.load.sorted", counted, raising=False)
    for b in range(MAX_BINS, MAX_BINS + 100):
        meter.lag(b * 0.1, 0.001)
    assert sorts == [] and len(meter.lag_ms) == MAX_BINS and min(meter.lag_ms) == 100


async def test_the_lag_probe_records_how_late_the_loop_woke_it() -> None:
    """A clock that jumps 0.25 s across each sleep: the loop was 0.2 s late on every wake."""
    meter = LoadMeter()
    ticks = iter(t * 0.25 for t in range(1000))
    woke = asyncio.Event()

    def clock() -> float:
        if len(meter.lag_ms) >= 3:
            woke.set()
        return next(ticks)

    task = asyncio.create_task(probe_loop_lag(meter, clock))
    try:
        await asyncio.wait_for(woke.wait(), 10)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert list(meter.lag_ms.values()) == pytest.approx([(0.25 - LAG_PROBE_S) * 1000] * len(meter.lag_ms))


def test_a_bin_series_forgets_what_falls_out_of_its_window_even_across_a_long_gap() -> None:
    series = BinSeries(capacity=4)
    series[10] = 1.0
    series[11] = 2.0
    series[13] = 3.0
    assert list(series.items()) == [(10, 1.0), (11, 2.0), (13, 3.0)] and len(series) == 3
    series[14] = 4.0  # bin 10 leaves the window of 4
    assert list(series) == [11, 13, 14] and series.get(10, -1.0) == -1.0
    series[9] = 9.0  # older than the window: ignored, nothing overwritten
    assert list(series.values()) == [2.0, 3.0, 4.0]
    series[100] = 5.0  # a gap longer than the window: only the new bin is left
    assert list(series.items()) == [(100, 5.0)] and len(series) == 1 and series.peak(0.0) == 5.0


def test_a_bin_series_reads_from_a_given_bin_and_has_no_peak_when_empty() -> None:
    series = BinSeries(capacity=8)
    assert series.peak(-1.0) == -1.0 and list(series.items()) == []
    for b in range(5):
        series[b] = float(b)
    assert list(series.items(since=3)) == [(3, 3.0), (4, 4.0)]
    assert series.peak(0.0) == 4.0
