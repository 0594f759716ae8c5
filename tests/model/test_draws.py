"""The portable random stream: published vectors of its two algorithms, and what the retry
policies draw from it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rtplay.model.draws import PortableRandom, fnv1a, stream_seed
from rtplay.model.retry_spec import parse_policy


def test_fnv1a_matches_the_published_test_vectors() -> None:
    # draft-eastlake-fnv, FNV-1a 32-bit: "" is the offset basis, "a" and "foobar" its examples.
    assert (fnv1a(""), fnv1a("a"), fnv1a("foobar")) == (0x811C9DC5, 0xE40C292C, 0xBF9CF968)


def test_mulberry32_matches_its_reference_output() -> None:
    # The reference JavaScript (Ettinger's mulberry32) seeded with 1 gives these three first.
    rng = PortableRandom(1)
    assert [rng.random() for _ in range(3)] == [0.6270739405881613, 0.002735721180215478, 0.5274470399599522]


def test_each_transport_has_its_own_stream_and_the_seed_text_picks_it() -> None:
    seeds = {stream_seed("0", t) for t in ("poll", "longpoll", "ws", "wt", "rtc")}
    assert len(seeds) == 5
    assert stream_seed("0", "ws") == fnv1a("0/ws") != stream_seed("1", "ws")


@given(st.integers(min_value=0, max_value=2**32 - 1))
def test_draws_lie_in_the_unit_interval_and_replay_from_a_saved_state(state: int) -> None:
    rng = PortableRandom(state)
    first = [rng.random() for _ in range(5)]
    assert all(0.0 <= x < 1.0 for x in first)
    saved = rng.getstate()
    later = [rng.uniform(2.0, 3.0) for _ in range(3)]
    rng.setstate(saved)
    assert [rng.uniform(2.0, 3.0) for _ in range(3)] == later
    assert all(2.0 <= x < 3.0 for x in later)
    assert 0 <= rng.randrange(10) < 10


def test_a_policy_on_a_seeded_stream_decides_the_same_waits_every_time() -> None:
    def waits(text: str) -> list[float]:
        policy = parse_policy(text).build(PortableRandom(stream_seed("7", "wt")))
        out = [policy.next_delay() for _ in range(3)]
        policy.reset()
        return out + [policy.next_delay()]

    for text in ("socketio", "exponential:full", "exponential:equal", "exponential:decorrelated"):
        first = waits(text)
        assert waits(text) == first, text
        assert len(set(first)) > 1, (text, first)  # jitter drawn, not a constant
    socketio = waits("socketio")
    assert 0.5 <= socketio[0] <= 1.5 and 1.0 <= socketio[1] <= 3.0 and 2.0 <= socketio[2] <= 5.0
