import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.model.channels import (
    MAX_TRACKED_GAPS,
    ChannelStats,
    ConnectionStats,
    LatencyHistogram,
    RateMeter,
    RecentLatency,
    SeqTracker,
)


def test_in_order_delivery() -> None:
    t = SeqTracker()
    for seq in range(1, 101):
        assert t.see(seq)
    assert (t.delivered, t.missing, t.duplicates, t.out_of_order) == (100, 0, 0, 0)


def test_gap_then_late_arrival_is_out_of_order_not_lost() -> None:
    t = SeqTracker()
    for seq in (1, 2, 5, 3, 4):
        t.see(seq)
    assert (t.delivered, t.missing, t.out_of_order) == (5, 0, 2)


def test_duplicates_are_counted_and_not_delivered_twice() -> None:
    t = SeqTracker()
    for seq in (1, 2, 2, 1, 3):
        t.see(seq)
    assert (t.delivered, t.duplicates) == (3, 2)


def test_reset_counts_evicted_seqs_separately_from_loss() -> None:
    t = SeqTracker(cursor=0)
    t.see(1)
    t.see(3)  # gap: 2
    assert t.reset(first=10) == 7  # 2 and 4..9
    assert (t.lost_to_reset, t.missing, t.highest) == (7, 0, 9)
    t.see(10)
    assert t.delivered == 3


def test_channel_lost_includes_the_unreceived_tail() -> None:
    stats = ChannelStats()
    for seq in (1, 2, 4):
        stats.on_message(seq, 0.0, 1.0, now=0.0)
    assert stats.lost(published=6) == 3  # 3, 5 and 6


def test_gap_tracking_is_bounded() -> None:
    t = SeqTracker()
    for seq in range(2, 2 * (MAX_TRACKED_GAPS + 10), 2):  # every other seq missing
        t.see(seq)
    assert len(t._gaps) <= MAX_TRACKED_GAPS
    assert t.missing == MAX_TRACKED_GAPS + 9 and t.written_off == 9


@given(st.lists(st.integers(min_value=1, max_value=200), max_size=400))
def test_tracker_invariants(seqs: list[int]) -> None:
    t = SeqTracker()
    for seq in seqs:
        t.see(seq)
    unique = set(seqs)
    assert t.delivered == len(unique)
    assert t.duplicates == len(seqs) - len(unique)
    assert t.missing == (max(unique) - len(unique) if unique else 0)


def test_histogram_percentiles_within_one_percent() -> None:
    h = LatencyHistogram()
    for ms in range(1, 1001):
        h.add(float(ms))
    assert h.percentile(50) == pytest.approx(500, rel=0.01)
    assert h.percentile(99) == pytest.approx(990, rel=0.01)
    assert h.max == 1000.0
    assert h.percentile(100) == 1000.0


def test_histogram_empty_and_clamped() -> None:
    h = LatencyHistogram()
    assert h.summary() == {"p50": None, "p95": None, "p99": None, "max": None}
    h.add(-0.5)
    assert h.percentile(50) == 0.0


def test_rate_meter_uses_the_given_clock() -> None:
    meter = RateMeter(window_s=1.0)
    for i in range(50):
        meter.add(10.0 + i * 0.01)
    assert meter.rate(now=10.5) == 50
    assert meter.rate(now=11.6) == 0


def test_connection_stats_count_reconnects_and_downtime() -> None:
    c = ConnectionStats()
    c.on_connected(0.0)
    c.on_disconnected(5.0)
    c.on_disconnected(6.0)  # a failed retry does not restart the downtime clock
    assert c.downtime(now=7.0) == 2.0
    c.on_connected(8.0)
    assert (c.connects, c.reconnects, c.downtime(now=100.0)) == (2, 1, 3.0)


def test_window_max_is_the_worst_latency_since_the_last_look() -> None:
    stats = ChannelStats()
    assert stats.take_window_max_ms() is None
    for seq, latency in enumerate((5.0, 40.0, 7.0), start=1):
        stats.on_message(seq, 0.0, latency, now=0.0)
    assert stats.take_window_max_ms() == 40.0
    assert stats.take_window_max_ms() is None
    stats.on_message(3, 0.0, 99.0, now=0.0)  # a duplicate has no latency of its own
    assert stats.take_window_max_ms() is None


def test_a_channel_keeps_its_last_ten_seconds_of_latency_in_a_few_kilobytes() -> None:
    """A crowd keeps thousands of clients in one process: each one's latency over the last ten
    seconds (a histogram per second) must cost what its samples do, not a table of every
    bucket per second (11 of 16.8 KB a client: 900 MB for a worker's 5,000)."""
    stats = ChannelStats()
    tracemalloc.start()
    try:
        for seq in range(1, 41):  # 20 s at 2 msg/s: every per-second slot of the window in use
            now = seq * 0.5
            stats.on_message(seq, sent_ms=now * 1000 - 2.0 - seq % 7, received_ms=now * 1000, now=now)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(stats.recent._slots) == RecentLatency.WINDOW_S
    assert held < 16 * 1024
    assert stats.recent.summary(20.0)["p50"] is not None


@given(st.lists(st.floats(min_value=0.0, max_value=2e6, allow_nan=False), min_size=1, max_size=300),
       st.integers(min_value=1, max_value=4))
def test_merged_histograms_answer_as_one_that_saw_every_sample(samples: list[float], parts: int) -> None:
    whole = LatencyHistogram()
    pieces = [LatencyHistogram() for _ in range(parts)]
    for i, ms in enumerate(samples):
        whole.add(ms)
        pieces[i % parts].add(ms)
    merged = LatencyHistogram.merged(pieces)
    assert merged.percentiles(0, 50, 95, 99, 100) == whole.percentiles(0, 50, 95, 99, 100)
    assert (merged.count, merged.max) == (whole.count, whole.max)
