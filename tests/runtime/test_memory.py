"""Giving memory back after a burst: the schedule (pure) and its one-timer adapter."""

from __future__ import annotations

import asyncio

import pytest

from rtplay.runtime.memory import (
    SHRINK_MIN_BYTES,
    MemoryReturn,
    TrimSchedule,
    malloc_trim,
    oversized,
)
from tests.conftest import wait_until


def test_no_trim_until_enough_releases_then_one_after_the_burst_settles() -> None:
    schedule = TrimSchedule(after=3, settle_s=1.0, min_gap_s=5.0)
    assert schedule.released(10.0) is None
    assert schedule.released(10.1) is None
    assert schedule.released(10.2) == pytest.approx(11.2)  # the third arms the one timer
    assert schedule.released(10.3) is None  # already armed: the burst's tail joins that trim
    assert schedule.fire(11.2) is True
    assert schedule.pending == 0


def test_trims_are_at_least_the_minimum_gap_apart_under_churn() -> None:
    schedule = TrimSchedule(after=1, settle_s=0.5, min_gap_s=5.0)
    assert schedule.released(0.0) == 0.5
    assert schedule.fire(0.5)
    assert schedule.released(1.0) == 5.5  # not 1.5: the last trim was at 0.5
    assert schedule.fire(5.5)


def test_a_few_clients_coming_and_going_never_trim() -> None:
    schedule = TrimSchedule(after=128)
    assert all(schedule.released(float(t)) is None for t in range(127))


def test_a_schedule_needs_a_positive_threshold() -> None:
    with pytest.raises(ValueError):
        TrimSchedule(after=0)


def test_malloc_trim_runs_on_glibc() -> None:
    assert malloc_trim() is True  # the CI machines and the playground's Linux run glibc


async def test_the_adapter_trims_once_per_burst_and_nothing_after_close() -> None:
    trimmed = asyncio.Event()
    calls: list[float] = []

    def trim() -> bool:
        calls.append(asyncio.get_running_loop().time())
        trimmed.set()
        return True

    memory = MemoryReturn(TrimSchedule(after=2, settle_s=0.01, min_gap_s=0.01), trim)
    memory.released()
    memory.released(3)
    await asyncio.wait_for(trimmed.wait(), 5)
    assert memory.trims == 1 and len(calls) == 1
    memory.close()
    memory.released(10)  # the server is stopping: no timer outlives it
    await asyncio.sleep(0.05)
    assert len(calls) == 1


def test_a_follow_up_trim_is_due_after_a_bursts_trim() -> None:
    schedule = TrimSchedule(after=1, settle_s=0.5, follow_up_s=12.0)
    assert schedule.released(0.0) == 0.5
    assert schedule.fire(0.5)
    assert schedule.follow_up(0.5) == 12.5


async def test_the_adapter_trims_once_more_after_the_follow_up_time() -> None:
    calls: list[float] = []

    def trim() -> bool:
        calls.append(asyncio.get_running_loop().time())
        return True

    memory = MemoryReturn(TrimSchedule(after=2, settle_s=0.01, min_gap_s=0.01, follow_up_s=0.1), trim)
    memory.released(2)
    await wait_until(lambda: len(calls) == 2, 5, "the burst's trim and its follow-up")
    assert memory.trims == 2 and calls[1] - calls[0] >= 0.09
    memory.close()


def test_a_table_is_oversized_once_a_burst_has_left_it_and_not_before() -> None:
    burst = {object() for _ in range(5000)}
    assert not oversized(burst)  # full: no rebuild
    stay = set(burst)
    for item in list(stay)[10:]:
        stay.discard(item)
    assert oversized(stay)  # 10 entries in a table built for 5,000
    assert not oversized(set(stay))  # once rebuilt, it is the right size
    assert not oversized(set())  # small tables are never worth a copy
    assert SHRINK_MIN_BYTES > 1024
