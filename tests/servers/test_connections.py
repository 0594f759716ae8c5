"""The registry of live connections: a ``drop`` fault aborts every connection of one
transport (or all), and the load meter follows accepts and closes."""

from __future__ import annotations

import logging

import pytest

from servers.core.connections import ConnectionRegistry


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_drop_aborts_only_the_connections_of_its_transport() -> None:
    registry = ConnectionRegistry(Clock())
    aborted: list[str] = []
    with registry.track("ws", lambda: aborted.append("ws-1")), registry.track("ws", lambda: aborted.append("ws-2")):
        with registry.track("sse", lambda: aborted.append("sse-1")):
            assert (registry.count("ws"), registry.count("sse"), registry.count("wt")) == (2, 1, 0)
            assert registry.drop("ws") == 2
            assert sorted(aborted) == ["ws-1", "ws-2"]
            assert registry.drop(None) == 3  # all: the aborts only ask; the connections end themselves
            assert sorted(aborted) == ["sse-1", "ws-1", "ws-1", "ws-2", "ws-2"]
    assert registry.count("ws") == registry.count("sse") == 0
    assert registry.drop() == 0


def test_a_connection_is_forgotten_when_its_block_ends_even_by_an_error() -> None:
    registry = ConnectionRegistry(Clock())
    with pytest.raises(ConnectionResetError):
        with registry.track("poll", lambda: None):
            raise ConnectionResetError
    assert registry.count("poll") == 0
    assert registry.load.concurrent == 0


def test_one_failing_abort_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    registry = ConnectionRegistry(Clock())
    aborted: list[int] = []

    def broken() -> None:
        raise RuntimeError("transport already gone")

    with registry.track("ws", broken), registry.track("ws", lambda: aborted.append(1)):
        with registry.track("ws", lambda: aborted.append(2)), caplog.at_level(logging.ERROR, logger="servers.core.connections"):
            assert registry.drop("ws") == 3
    assert sorted(aborted) == [1, 2]
    assert "aborting a ws connection failed" in caplog.text


def test_the_load_meter_sees_accepts_and_closes_at_the_registry_clock() -> None:
    clock = Clock()
    registry = ConnectionRegistry(clock)
    with registry.track("ws", lambda: None):
        clock.now = 100.05
        with registry.track("sse", lambda: None):
            assert registry.load.concurrent == 2
        clock.now = 100.35
    series = registry.load.series()
    assert series["accepts_per_s"] == [[100.0, 20.0]]
    assert series["concurrent"] == [[100.0, 2.0], [100.3, 0.0]]
    assert series["concurrent_now"] == 0
