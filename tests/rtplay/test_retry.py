import random

import pytest

from rtplay.retry import ExponentialBackoff, FixedDelay, Heartbeat


def test_exponential_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    b = ExponentialBackoff(initial=1, maximum=5, factor=2, jitter=0)
    assert [b.next_delay() for _ in range(5)] == [1, 2, 4, 5, 5]
    b.reset()
    assert b.next_delay() == 1


def test_jitter_stays_within_half_of_the_base() -> None:
    b = ExponentialBackoff(rng=random.Random(7))
    delays = [b.next_delay() for _ in range(3)]
    for delay, base in zip(delays, [1, 2, 4]):
        assert base * 0.5 <= delay <= min(5, base * 1.5)
    assert len(set(delays)) == 3


def test_fixed_delay() -> None:
    assert FixedDelay(10).next_delay() == 10


def test_heartbeat_pings_on_schedule_and_expires_after_timeout() -> None:
    hb = Heartbeat(interval=5, timeout=3, now=0)
    assert not hb.ping_due(4.9)
    assert hb.ping_due(5.0)
    hb.ping_sent(5.0)
    assert not hb.expired(7.9)
    assert hb.expired(8.0)
    assert hb.next_deadline(6.0) == 8.0


def test_heartbeat_any_traffic_counts_as_life() -> None:
    hb = Heartbeat(interval=5, timeout=3, now=0)
    hb.ping_sent(5.0)
    hb.heard(7.0)
    assert not hb.expired(100.0 - 90)
    assert hb.next_deadline(7.0) == pytest.approx(10.0)
