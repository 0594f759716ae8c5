"""Held long-polls: the timer wheel of their deadlines (pure) and :class:`HeldPolls`, which
answers them from the publisher."""

from __future__ import annotations

import asyncio
import time

import pytest

from rtplay.protocol.envelope import Envelope
from servers.core.hub import Hub
from servers.http.longpoll import ANSWERS_PER_TURN, HeldPolls, Outcome
from servers.http.longpoll_wheel import HoldWheel

TICK = 0.05


def test_a_hold_ends_in_the_first_slot_at_or_after_its_deadline_never_before() -> None:
    wheel: HoldWheel[str] = HoldWheel(TICK)
    assert wheel.add("a", 1.01) is True  # the earliest: the caller arms its timer
    assert wheel.add("b", 1.04) is False  # same slot, nothing to re-arm
    assert wheel.add("c", 0.5) is True
    assert wheel.next_due() == pytest.approx(0.5)
    assert wheel.due(0.49) == []
    assert wheel.due(0.5) == ["c"]
    assert wheel.next_due() == pytest.approx(1.05)
    assert wheel.due(1.04) == []  # "a" is due at 1.01, but its slot ends at 1.05
    assert sorted(wheel.due(1.05)) == ["a", "b"]
    assert len(wheel) == 0 and wheel.next_due() is None


def test_an_answered_hold_leaves_the_wheel_and_its_emptied_slot_no_timer() -> None:
    wheel: HoldWheel[str] = HoldWheel(TICK)
    wheel.add("a", 1.0)
    wheel.add("b", 2.0)
    wheel.discard("a")
    wheel.discard("a")  # twice is nothing
    assert len(wheel) == 1
    assert wheel.next_due() == pytest.approx(2.0)  # the emptied slot no longer counts
    assert wheel.due(10.0) == ["b"]


def test_a_tick_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HoldWheel(0)


def _held(hub: Hub, shaped: bool = False) -> HeldPolls:
    return HeldPolls(hub, lambda: shaped)


async def test_every_request_held_at_a_cursor_gets_the_same_body_built_once() -> None:
    hub = Hub()
    hub.publish(1000.0)
    held = _held(hub)
    waits = [asyncio.create_task(held.wait(1, 30)) for _ in range(50)]
    await asyncio.sleep(0)
    assert len(held) == 50
    envelope: Envelope = hub.publish(2000.0)
    held.published(envelope)
    answers = await asyncio.gather(*waits)
    assert answers[0] == b'{"messages":[' + envelope.json.encode() + b'],"last":2}'
    assert all(a is answers[0] for a in answers)  # one object, not fifty equal ones
    assert held.bodies == 1 and len(held) == 0


async def test_holds_time_out_together_on_one_timer() -> None:
    held = _held(Hub())
    loop = asyncio.get_running_loop()
    start = loop.time()
    outcomes = await asyncio.gather(*(held.wait(0, 0.1) for _ in range(20)))
    assert outcomes == [Outcome.TIMED_OUT] * 20
    assert loop.time() - start >= 0.1  # never before the deadline
    assert len(held) == 0


async def test_a_cancelled_request_leaves_nothing_filed() -> None:
    held = _held(Hub())
    task = asyncio.create_task(held.wait(0, 30))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait([task])
    assert task.cancelled() and len(held) == 0


async def test_a_large_backlog_is_left_to_each_request_to_write_in_pieces() -> None:
    hub = Hub(payload_size=2000)
    held = _held(hub)
    wait = asyncio.create_task(held.wait(0, 30))
    await asyncio.sleep(0)
    for i in range(40):  # ~80 KB: over one piece
        hub.publish(1000.0 + i)
    held.published(hub.publish(2000.0))
    assert await wait is Outcome.READY


async def _hold(held: HeldPolls, count: int, cursor: int) -> list[asyncio.Task[object]]:
    waits: list[asyncio.Task[object]] = [asyncio.create_task(held.wait(cursor, 30)) for _ in range(count)]
    await asyncio.sleep(0)
    assert len(held) == count
    return waits


async def test_a_wave_of_held_answers_takes_turns_of_the_loop() -> None:
    hub = Hub()
    hub.publish(1000.0)
    held = _held(hub)
    waits = await _hold(held, 2 * ANSWERS_PER_TURN + 7, cursor=1)
    held.published(hub.publish(2000.0))
    await asyncio.sleep(0)  # one turn: the first batch's requests ran, the rest still wait
    assert sum(w.done() for w in waits) == ANSWERS_PER_TURN
    await asyncio.sleep(0)
    assert sum(w.done() for w in waits) == 2 * ANSWERS_PER_TURN
    answers = await asyncio.gather(*waits)
    body = answers[0]
    assert isinstance(body, bytes) and body.endswith(b'"last":2}')
    assert all(a is body for a in answers)
    assert held.turns == 3 and held.bodies == 1 and len(held) == 0


async def test_a_publish_during_a_wave_reaches_the_requests_not_yet_answered() -> None:
    hub = Hub()
    hub.publish(1000.0)
    held = _held(hub)
    waits = await _hold(held, ANSWERS_PER_TURN + 5, cursor=1)
    held.published(hub.publish(2000.0))
    held.published(hub.publish(3000.0))  # before the wave's second turn
    answers = await asyncio.gather(*waits)
    lasts = sorted({a[-3:] for a in answers if isinstance(a, bytes)})
    assert lasts == [b':2}', b':3}']  # the first batch got one message, the rest both
    assert sum(isinstance(a, bytes) and a.endswith(b'"last":3}') for a in answers) == 5


async def test_closing_during_a_wave_ends_the_requests_not_yet_answered() -> None:
    hub = Hub()
    hub.publish(1000.0)
    held = _held(hub)
    waits = await _hold(held, ANSWERS_PER_TURN + 5, cursor=1)
    held.published(hub.publish(2000.0))
    held.close()
    answers = await asyncio.gather(*waits)
    assert answers.count(Outcome.TIMED_OUT) == 5 and len(held) == 0


async def test_held_requests_look_the_running_loop_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython 3.11's ``asyncio.get_running_loop()`` is a ``getpid()`` system call each time."""
    lookups: list[int] = []
    real = asyncio.get_running_loop

    def counted() -> asyncio.AbstractEventLoop:
        lookups.append(1)
        return real()

    hub = Hub()
    hub.publish(1000.0)
    held = _held(hub)
    monkeypatch.setattr("servers.http.longpoll.asyncio.get_running_loop", counted)
    waits = await _hold(held, ANSWERS_PER_TURN + 5, cursor=1)
    held.published(hub.publish(2000.0))
    await asyncio.gather(*waits)
    assert len(lookups) == 1


async def test_on_a_dense_stream_one_window_answers_everyone_and_a_shaping_fault_answers_at_once() -> None:
    hub = Hub()
    now = time.time() * 1000
    hub.publish(now)
    held = _held(hub)
    waits = [asyncio.create_task(held.wait(1, 30)) for _ in range(10)]
    await asyncio.sleep(0)
    held.published(hub.publish(now + 1))
    held.published(hub.publish(now + 2))  # 1 ms apart: dense
    await asyncio.sleep(0)
    assert not any(w.done() for w in waits)  # the window is open: more may come
    answers = await asyncio.gather(*waits)
    assert all(a is answers[0] for a in answers) and answers[0].endswith(b'"last":3}')  # one body, both messages
    assert held.bodies == 1
    shaped = _held(hub, shaped=True)  # a throttle or delay holds the answer anyway: no window
    wait = asyncio.create_task(shaped.wait(3, 30))
    await asyncio.sleep(0)
    shaped.published(hub.publish(now + 3))
    await asyncio.sleep(0)
    assert wait.done()


def test_clients_one_message_behind_share_one_body_until_the_next_publish() -> None:
    hub = Hub()
    for i in range(3):
        hub.publish(1000.0 + i)
    held = _held(hub)
    first = held.body(2)
    assert first is not None and first.endswith(b'"last":3}')
    assert held.body(2) is first and held.bodies == 1  # built once for every client at seq 2
    hub.publish(2000.0)
    again = held.body(2)
    assert again is not first and again is not None and again.endswith(b'"last":4}')  # never stale
    ahead = held.body(10)  # a future cursor: the reset, then everything buffered
    assert ahead is not None and b'"reset"' in ahead
