"""A crowd's clients notice a mass loss a few at a time, with the loop's timers in between."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from rtplay.clients import Endpoints
from rtplay.clients.core import ReconnectingClient
from rtplay.clients.turns import NoticeTurns
from rtplay.clients.ws import WebSocketClient
from rtplay.engine.crowd_slice import SliceConfig, make_clients


class TurnCounter:
    """Counts the loop's turns: a callback that schedules itself again each turn."""

    def __init__(self) -> None:
        self.turn = 0
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def _tick(self) -> None:
        self.turn += 1
        self._handle = asyncio.get_running_loop().call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


async def notice_all(turns: NoticeTurns, clients: int, notice: asyncio.Event, passed: list[tuple[int, int]], counter: TurnCounter) -> None:
    async def client(index: int) -> None:
        await notice.wait()  # the outage: every client wakes in the same turn
        await turns.wait()
        passed.append((index, counter.turn))

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(0)
    notice.set()
    await asyncio.gather(*tasks)


async def test_a_loss_noticed_by_a_whole_crowd_at_once_is_taken_a_few_clients_a_turn() -> None:
    turns, passed, counter = NoticeTurns(per_turn=7), [], TurnCounter()
    try:
        await notice_all(turns, 50, asyncio.Event(), passed, counter)
    finally:
        counter.stop()
    per_turn = Counter(turn for _, turn in passed)
    assert len(passed) == 50
    assert max(per_turn.values()) <= 7
    assert len(per_turn) >= 50 // 7, "spread over turns"
    assert [index for index, _ in passed] == list(range(50)), "first come, first served"


async def test_a_retry_timer_due_during_a_mass_notice_fires_before_the_notice_ends() -> None:
    # The defect it guards against: one turn for 5,000 notices, every timer due meanwhile
    # fired after the last of them, so full jitter's short retries went out in one burst.
    loop = asyncio.get_running_loop()
    turns, notice = NoticeTurns(per_turn=10), asyncio.Event()
    order: list[str] = []

    async def client(index: int) -> None:
        await notice.wait()
        await turns.wait()
        order.append(f"notice {index}")
        if index == 0:
            loop.call_later(0, order.append, "retry 0")  # the first client's retry, due at once

    tasks = [asyncio.create_task(client(i)) for i in range(100)]
    await asyncio.sleep(0)
    notice.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(0.01)
    assert order.index("retry 0") < order.index("notice 99")


async def test_a_client_cancelled_while_it_waits_its_turn_gives_up_its_place() -> None:
    turns = NoticeTurns(per_turn=1)
    first, second, third = (asyncio.create_task(turns.wait()) for _ in range(3))
    await asyncio.sleep(0)  # all three asked in one turn: the first passed, two wait
    assert first.done() and not second.done() and not third.done()
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    async with asyncio.timeout(5):
        await third  # the cancelled one took no turn from it


def test_turns_of_no_client_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        NoticeTurns(per_turn=0)


def test_a_crowd_slices_clients_share_one_set_of_turns_and_the_panes_client_waits_for_none() -> None:
    config = SliceConfig("ws", 3, 0, 1, "exponential:full", Endpoints("http://127.0.0.1:1"))
    clients = make_clients(config, lambda index: lambda event: None)
    turns = [c.notice_turns for c in clients if isinstance(c, ReconnectingClient)]
    assert len(turns) == 3 and turns[0] is not None and all(t is turns[0] for t in turns)
    assert WebSocketClient("http://127.0.0.1:1").notice_turns is None
