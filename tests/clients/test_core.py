"""The reconnecting-client core: strict resets on every transport, live channels, the loop."""

from __future__ import annotations

import asyncio
import json

import pytest

from rtplay.clients.core import Fail, LiveStart, ReconnectingClient, reset_signal
from rtplay.clients.http_common import apply_batch
from rtplay.clients.poll import PollClient
from rtplay.model.channels import ChannelStats
from rtplay.model.events import Connecting, Event, RetryScheduled
from rtplay.protocol.envelope import ProtocolError, Received


@pytest.mark.parametrize("reset", [{"first": "3"}, {}, "soon", {"first": 0}, {"first": True}])
def test_a_malformed_reset_in_a_poll_batch_is_a_protocol_error(reset: object) -> None:
    # It used to be ignored silently on poll/long-poll: a loss nobody accounted for.
    body = json.dumps({"messages": [], "last": 5, "reset": reset}).encode()
    with pytest.raises(ProtocolError, match="bad reset"):
        apply_batch(PollClient("http://127.0.0.1:1"), body, 0.0)


def test_a_well_formed_reset_in_a_batch_is_accounted() -> None:
    client = PollClient("http://127.0.0.1:1")
    apply_batch(client, json.dumps({"messages": [], "last": 9, "reset": {"first": 5}}).encode(), 0.0)
    assert client.stats["main"].tracker.lost_to_reset == 4


def test_reset_signal_reads_only_reset_signals() -> None:
    assert reset_signal({"seq": 1}) is None
    assert reset_signal("x") is None
    assert reset_signal({"reset": {"first": 7}}) == 7


def test_a_live_channel_holds_what_overtook_its_marker_and_skips_what_came_before() -> None:
    stats = ChannelStats.unreliable()
    seen: list[int] = []
    starts: list[int] = []
    live = LiveStart(
        lambda first: (starts.append(first), stats.live.live_from(first)),  # type: ignore[union-attr]
        lambda env, ms: (seen.append(env.seq), stats.on_message(env.seq, env.t, ms, 0.0)),
    )
    live.offer(Received(11, 0.0), 1.0)
    assert seen == []
    live.start(11)
    live.offer(Received(12, 0.0), 1.0)
    assert seen == [11, 12] and starts == [11]
    assert stats.tracker.missing == 0  # 1..10 were never sent on this channel
    with pytest.raises(ProtocolError, match="bad live marker"):
        live.start("11")


class Scripted(ReconnectingClient):
    """An adapter whose attempts fail as scripted, to drive the core's loop."""

    name = "scripted"

    def __init__(self, outcomes: list[BaseException | str], **kw: object) -> None:
        self.events: list[Event] = []
        super().__init__("http://127.0.0.1:1", self.events.append, **kw)  # type: ignore[arg-type]
        self.outcomes = outcomes
        self.clock = lambda: 100.0

    async def attempt(self) -> str:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        self._connected()
        return outcome


async def test_the_core_decides_each_wait_with_the_chosen_policy_and_stops_on_fail() -> None:
    client = Scripted([OSError("refused"), OSError("refused"), "closed", Fail("gone for good")],
                      retry="exponential:jitter=none,base=0.001,cap=0.002")
    await asyncio.wait_for(client.run(), 5)
    waits = [e.delay_s for e in client.events if isinstance(e, RetryScheduled)]
    assert waits == [0.001, 0.002, 0.001]  # a connection in between starts the policy over
    assert sum(isinstance(e, Connecting) for e in client.events) == 4
    assert client.state.value == "failed" and client.state_detail == "gone for good"
    assert client.retry.last is not None and client.retry.last.policy == "exp none 0.001s×2≤0.002s"


async def test_a_longer_retry_after_wins_over_the_policy() -> None:
    class WithRetryAfter(Scripted):
        def explain(self, exc: BaseException) -> tuple[str, float | None]:
            return "busy", 0.01

    client = WithRetryAfter([OSError("busy"), Fail("stop")], retry="immediate")
    await asyncio.wait_for(client.run(), 5)
    assert [(e.delay_s, e.policy) for e in client.events if isinstance(e, RetryScheduled)] == [(0.01, "Retry-After")]
