"""When each unit goes out: Toxiproxy's semantics, exact, with time and randomness passed in."""

from __future__ import annotations

import random

import pytest

from rtplay.proxy.shaping import Shaper, refusal, stalled
from rtplay.proxy.toxics import Toxic, parse_toxic


def toxic(type_: str, stream: str = "downstream", toxicity: float = 1.0, **attributes: float | str) -> Toxic:
    return parse_toxic({"type": type_, "stream": stream, "toxicity": toxicity, "attributes": attributes})


def test_latency_delays_each_chunk_without_cutting_throughput() -> None:
    shaper = Shaper(random.Random(0))
    lat = [toxic("latency", latency=100)]
    steps = [shaper.plan(lat, 10, t, False) for t in (0.0, 0.01, 0.02)]
    assert [round(s.due, 3) for s in steps] == [0.1, 0.11, 0.12]
    assert all(s.added_s == pytest.approx(0.1) for s in steps)


def test_jitter_stays_within_its_bounds_and_order_is_kept() -> None:
    shaper = Shaper(random.Random(1))
    lat = [toxic("latency", latency=100, jitter=50)]
    dues = [shaper.plan(lat, 1, i * 0.001, False).due for i in range(200)]
    assert dues == sorted(dues)
    assert all(0.05 <= d - i * 0.001 or d == dues[i - 1] for i, d in enumerate(dues))
    assert max(d - i * 0.001 for i, d in enumerate(dues)) <= 0.15 + 1e-9


def test_bandwidth_paces_by_size() -> None:
    shaper = Shaper(random.Random(0))
    bw = [toxic("bandwidth", rate=10)]  # 10 KB/s = 10,000 bytes/s
    first = shaper.plan(bw, 5000, 0.0, False)
    second = shaper.plan(bw, 5000, 0.0, False)
    assert (first.due, second.due) == (0.0, pytest.approx(0.5))


def test_slicer_cuts_a_chunk_into_pieces_microseconds_apart() -> None:
    shaper = Shaper(random.Random(0))
    step = shaper.plan([toxic("slicer", average_size=10, size_variation=3, delay=500)], 100, 0.0, False)
    assert sum(step.pieces) == 100 and all(1 <= p <= 13 for p in step.pieces)
    assert step.piece_gap_s == pytest.approx(0.0005)


def test_limit_data_closes_after_its_bytes() -> None:
    shaper = Shaper(random.Random(0))
    limit = [toxic("limit_data", bytes=150)]
    assert shaper.plan(limit, 100, 0, False).keep_bytes is None
    last = shaper.plan(limit, 100, 0, False)
    assert last.keep_bytes == 50 and last.closes


def test_message_faults_act_on_messages_only() -> None:
    shaper = Shaper(random.Random(0))
    everything = [toxic("loss", percent=100)]
    assert shaper.plan(everything, 10, 0, True).copies == 0
    assert shaper.plan(everything, 10, 0, False).copies == 1  # a byte chunk is not a message
    assert shaper.plan([toxic("duplicate", percent=100)], 10, 0, True).copies == 2
    assert shaper.plan([toxic("reorder", percent=100)], 10, 0, True).hold


def test_loss_rate_follows_its_percentage() -> None:
    shaper = Shaper(random.Random(7))
    lost = sum(shaper.plan([toxic("loss", percent=20)], 1, 0, True).copies == 0 for _ in range(5000))
    assert 900 < lost < 1100


def test_toxicity_is_drawn_once_per_connection() -> None:
    half = toxic("latency", toxicity=0.5, latency=10)
    got = [bool(Shaper(random.Random(seed)).active([half], "http", "downstream")) for seed in range(400)]
    assert 150 < sum(got) < 250
    shaper = Shaper(random.Random(3))
    first = shaper.active([half], "http", "downstream")
    assert all(shaper.active([half], "http", "downstream") == first for _ in range(20))


def test_scope_kind_and_stream() -> None:
    shaper = Shaper(random.Random(0))
    on_sse = toxic("delay", delay=10, kind="sse")
    assert shaper.active([on_sse], "sse", "downstream") == [on_sse]
    assert shaper.active([on_sse], "ws", "downstream") == []
    assert shaper.active([on_sse], "sse", "upstream") == []


def test_refusal_and_stall() -> None:
    err = toxic("error", status=503, retry_after=2, kind="sse")
    assert refusal([err], "sse") == (503, 2.0) and refusal([err], "http") is None
    assert stalled([toxic("stall", kind="ws")], "ws", "downstream")
    assert stalled([toxic("timeout", timeout=0)], "http", "downstream")
    assert not stalled([toxic("stall", kind="ws")], "sse", "downstream")
