import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtplay.model.retry import EventSourceDelay, Exponential, ExponentialBackoff, ExponentialParams, FixedDelay, Heartbeat, Immediate
from rtplay.model.retry_spec import CYCLE, RetrySpecError, next_in_cycle, parse_assignment, parse_policy


def test_exponential_backoff_without_jitter_doubles_up_to_the_cap() -> None:
    b = ExponentialBackoff(initial=1, maximum=5, factor=2, jitter=0)
    assert [b.next_delay() for _ in range(5)] == [1, 2, 4, 5, 5]
    b.reset()
    assert b.next_delay() == 1


def test_jitter_stays_within_half_of_the_base() -> None:
    b = ExponentialBackoff(rng=random.Random(7))
    delays = [b.next_delay() for _ in range(3)]
    for delay, base in zip(delays, [1, 2, 4], strict=False):
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


def test_a_quiet_only_heartbeat_sends_no_ping_while_traffic_flows_yet_finds_a_dead_peer() -> None:
    hb = Heartbeat(interval=5, timeout=3, now=0, quiet_only=True)
    for t in range(1, 20):  # a message a second: never five quiet seconds, never a ping
        hb.heard(float(t))
        assert not hb.ping_due(t + 0.99)
    assert hb.next_deadline(19.5) == 24.0  # silence from 19 s on: a ping is due at 24 s
    assert hb.ping_due(24.0)
    hb.ping_sent(24.0)
    assert not hb.expired(26.9) and hb.expired(27.0)  # dead within interval + timeout of the last frame
    every = Heartbeat(interval=5, timeout=3, now=0)
    every.heard(4.0)
    assert every.ping_due(5.0)  # the pane's heartbeat pings on its interval, traffic or not


# --- named policies and their grammar --------------------------------------------------------


params = st.builds(
    ExponentialParams,
    jitter=st.sampled_from(["none", "full", "equal", "decorrelated"]),
    base=st.floats(0.01, 10),
    cap=st.floats(10, 120),
    factor=st.floats(1, 5),
)


@settings(max_examples=200, deadline=None)
@given(params, st.integers(0, 2**32), st.integers(1, 40))
def test_every_exponential_wait_is_within_zero_and_the_cap(p: ExponentialParams, seed: int, n: int) -> None:
    policy = Exponential(p, random.Random(seed))
    for failures in range(1, n + 1):
        delay = policy.next_delay(now=float(failures))
        ceiling = min(p.cap, p.base * p.factor ** (failures - 1))
        assert 0 <= delay <= p.cap
        if p.jitter == "none":
            assert delay == ceiling
        elif p.jitter == "full":
            assert delay <= ceiling
        elif p.jitter == "equal":
            assert ceiling / 2 <= delay <= ceiling
        else:
            assert p.base <= delay or delay == p.cap
        assert policy.last is not None and policy.last.delay == delay and policy.last.failures == failures


@settings(max_examples=100, deadline=None)
@given(params, st.integers(0, 2**32))
def test_the_same_seed_decides_the_same_and_reset_starts_over(p: ExponentialParams, seed: int) -> None:
    a, b = Exponential(p, random.Random(seed)), Exponential(p, random.Random(seed))
    first = [a.next_delay() for _ in range(6)]
    assert first == [b.next_delay() for _ in range(6)]
    a.reset()
    assert a.failures == 0
    assert a.next_delay() <= min(p.cap, p.base) * (3 if p.jitter == "decorrelated" else 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32), st.integers(1, 30))
def test_socketio_stays_within_half_of_its_base_and_the_cap(seed: int, n: int) -> None:
    policy = parse_policy("socketio").build(random.Random(seed))
    for failures in range(1, n + 1):
        base = min(5.0, 2.0 ** (failures - 1))
        assert base * 0.5 <= policy.next_delay() <= min(5.0, base * 1.5)


def test_full_jitter_spreads_a_crowd_that_no_jitter_keeps_in_step() -> None:
    none = [parse_policy("exponential:none").build(random.Random(i)).next_delay() for i in range(1000)]
    full = [parse_policy("exponential:full").build(random.Random(i)).next_delay() for i in range(1000)]
    assert len(set(none)) == 1
    assert max(sum(1 for d in full if k / 10 <= d < (k + 1) / 10) for k in range(10)) < 200


def test_eventsource_follows_the_server_and_falls_back_to_three_seconds() -> None:
    policy = EventSourceDelay()
    assert policy.next_delay(hint=None) == 3.0 and policy.describe() == "eventsource, 3 s default"
    assert policy.next_delay(hint=0.5) == 0.5 and policy.describe() == "eventsource, the stream's retry:"
    assert Immediate().next_delay() == 0.0


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("fixed:10", "fixed:10"),
        ("fixed:500ms", "fixed:0.5"),
        ("immediate", "immediate"),
        ("eventsource", "eventsource"),
        ("socketio", "socketio"),
        ("exponential", "exponential:jitter=none,base=1,cap=30,factor=2"),
        ("exponential:full", "exponential:jitter=full,base=1,cap=30,factor=2"),
        ("exponential:jitter=full,base=0.5,cap=10", "exponential:jitter=full,base=0.5,cap=10,factor=2"),
        ("exponential:decorrelated,factor=3", "exponential:jitter=decorrelated,base=1,cap=30,factor=3"),
    ],
)
def test_policy_texts_parse_to_a_canonical_form_that_reads_back(text: str, canonical: str) -> None:
    spec = parse_policy(text)
    assert str(spec) == canonical
    assert parse_policy(str(spec)) == spec


@pytest.mark.parametrize(
    "text, message",
    [
        ("backoff", "unknown retry policy"),
        ("fixed", "fixed needs a wait"),
        ("fixed:soon", "expected seconds"),
        ("fixed:-1", "must be 0-3600"),
        ("exponential:sometimes", "jitter must be one of none, full, equal, decorrelated"),
        ("exponential:jitter=full,base=5,cap=1", "cap (1 s) is below base (5 s)"),
        ("exponential:factor=0.5", "factor must be a number 1-100"),
        ("exponential:full,speed=3", "unknown exponential setting 'speed=3'"),
        ("immediate:3", "immediate takes no settings"),
    ],
)
def test_bad_policy_texts_say_what_was_expected(text: str, message: str) -> None:
    with pytest.raises(RetrySpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_policy(text)


def test_an_assignment_names_a_known_transport() -> None:
    assert parse_assignment("ws=exponential:full", ["ws", "sse"]) == ("ws", parse_policy("exponential:full"))
    with pytest.raises(RetrySpecError, match="unknown transport 'xx'"):
        parse_assignment("xx=immediate", ["ws"])
    with pytest.raises(RetrySpecError, match="TRANSPORT=POLICY"):
        parse_assignment("exponential", ["ws"])


def test_the_playground_key_cycles_through_every_policy() -> None:
    seen, current = [], "socketio"
    for _ in CYCLE:
        current = str(next_in_cycle(current))
        seen.append(current)
    assert seen[-1] == "socketio" and len(set(seen)) == len(CYCLE)
