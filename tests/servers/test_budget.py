"""The WebTransport send budget on its own: how much a session may still write, and when a
sender waiting for its peer's flow-control credit counts as stuck (``now`` passed in)."""

from __future__ import annotations

from servers.quic.budget import (
    ENVELOPE_BUDGET_BYTES,
    MAX_CONNECTION_BUFFERED_BYTES,
    MAX_SESSION_BUFFERED_BYTES,
    CreditWatch,
    room,
)


def test_room_is_what_both_the_session_and_the_connection_still_allow() -> None:
    assert room(0, 0) == MAX_SESSION_BUFFERED_BYTES
    assert room(MAX_SESSION_BUFFERED_BYTES - 10, 0) == 10
    assert room(0, ENVELOPE_BUDGET_BYTES - 7) == 7  # other sessions used the connection's share
    assert room(MAX_SESSION_BUFFERED_BYTES + 5, 0) == 0
    assert room(0, ENVELOPE_BUDGET_BYTES + 5) == 0
    assert ENVELOPE_BUDGET_BYTES < MAX_CONNECTION_BUFFERED_BYTES  # the rest is for close capsules


def test_a_sender_is_stuck_once_blocked_without_progress_for_the_whole_time() -> None:
    watch = CreditWatch(stuck_after_s=5.0)
    watch.observe(blocked=False, progress=(0, 1000), now=0.0)
    assert watch.deadline is None and not watch.stuck(100.0)  # nothing waits: never stuck
    watch.observe(blocked=True, progress=(0, 1000), now=10.0)
    assert watch.deadline == 15.0
    watch.observe(blocked=True, progress=(0, 1000), now=14.0)  # the same credit: the clock runs on
    assert not watch.stuck(14.9) and watch.stuck(15.0)


def test_any_progress_restarts_the_clock_and_unblocking_stops_it() -> None:
    watch = CreditWatch(stuck_after_s=5.0)
    watch.observe(blocked=True, progress=(0, 1000), now=0.0)
    watch.observe(blocked=True, progress=(0, 2000), now=4.0)  # the peer granted more credit
    assert watch.deadline == 9.0 and not watch.stuck(8.0)
    watch.observe(blocked=True, progress=(500, 2000), now=8.0)  # it acknowledged data
    assert watch.deadline == 13.0
    watch.observe(blocked=False, progress=(500, 2000), now=12.0)
    assert watch.deadline is None and not watch.stuck(20.0)
    watch.observe(blocked=True, progress=(500, 2000), now=30.0)  # blocked again: a fresh start
    assert watch.deadline == 35.0
