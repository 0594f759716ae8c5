import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.protocol.envelope import Reset, make_envelope
from servers.core.hub import Hub
from servers.http.longpoll import DENSE_GAP_MS, coalesce_delay


def test_envelopes_are_sequenced_from_one_and_encoded_once() -> None:
    hub = Hub()
    first = hub.publish(1000.0)
    second = hub.publish(1001.5)
    assert (first.seq, second.seq) == (1, 2)
    assert json.loads(second.json) == {"seq": 2, "t": 1001.5, "data": second.data}


def test_since_returns_everything_after_the_cursor() -> None:
    hub = Hub()
    for i in range(5):
        hub.publish(float(i))
    backlog = hub.since(2)
    assert [e.seq for e in backlog.messages] == [3, 4, 5]
    assert backlog.reset is None
    assert hub.since(5).messages == []


def test_evicted_resume_point_gets_an_explicit_reset() -> None:
    hub = Hub(capacity=3)
    for i in range(10):
        hub.publish(float(i))
    backlog = hub.since(2)
    assert backlog.reset == Reset(since=2, first=8)
    assert backlog.reset.lost == 5
    assert [e.seq for e in backlog.messages] == [8, 9, 10]
    assert hub.since(7).reset is None


def test_forget_loses_the_buffer_but_not_the_count() -> None:
    hub = Hub()
    for i in range(4):
        hub.publish(float(i))
    hub.forget()
    assert hub.since(1).reset == Reset(since=1, first=5)
    assert hub.publish(9.0).seq == 5


def test_caught_up_cursor_needs_no_reset_even_when_buffer_is_empty() -> None:
    hub = Hub()
    hub.publish(0.0)
    hub.forget()
    assert hub.since(1).reset is None


def test_negative_cursor_is_rejected() -> None:
    with pytest.raises(ValueError):
        Hub().since(-1)


@given(
    seq=st.integers(min_value=1, max_value=2**53),
    t=st.floats(min_value=0, max_value=4e12, allow_nan=False) | st.integers(min_value=0, max_value=4 * 10**12),
    data=st.text(max_size=64),
)
def test_envelope_encoding_is_exactly_what_json_dumps_gives(seq: int, t: float, data: str) -> None:
    envelope = make_envelope(seq, t, data)
    assert envelope.json == json.dumps({"seq": seq, "t": envelope.t, "data": data}, separators=(",", ":"))


def test_a_stream_published_in_bursts_is_dense_at_every_burst() -> None:
    """1000 msg/s goes out as ~5 envelopes every ~5 ms, stamped microseconds apart. Judged by
    the two newest, each burst's first envelope made the stream look sparse (a 5 ms gap), and
    a long-poll held at the head was answered with that one burst instead of coalescing."""
    hub = Hub()
    for tick in range(20):
        for i in range(5):
            hub.publish(1000.0 + tick * 5.2 + i * 0.01)
            gap = hub.gap_ms()
            assert hub.last_seq < 2 or (gap is not None and gap < DENSE_GAP_MS), (tick, i, gap)
    newest = hub.publish(1000.0 + 20 * 5.2).t
    assert coalesce_delay(newest, hub.gap_ms(), newest) > 0  # a held long-poll waits for more
    sparse = Hub()
    for i in range(20):  # 10 msg/s: answered at once
        sparse.publish(1000.0 + i * 100)
    assert coalesce_delay(2900.0, sparse.gap_ms(), 2900.0) == 0.0
