"""The data-channel control words (ping, pong, live, closing): what one end writes, the other
end recognises, and nothing else is taken for one."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.protocol import messages
from rtplay.protocol.envelope import make_envelope

stamps = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@given(stamps)
def test_a_pong_carries_back_the_stamp_of_its_ping(stamp: float) -> None:
    ping = json.loads(messages.ping(stamp))
    assert messages.is_control(ping)
    assert messages.number_of(ping, messages.PING) == stamp
    pong = json.loads(messages.pong(messages.number_of(ping, messages.PING) or 0.0))
    assert messages.is_control(pong)
    assert messages.number_of(pong, messages.PONG) == stamp
    assert messages.number_of(pong, messages.PING) is None  # a pong is not a ping


@given(st.integers(min_value=1, max_value=2**53), st.text())
def test_live_and_closing_decode_to_what_was_sent(first: int, reason: str) -> None:
    live = json.loads(messages.live(first))
    closing = json.loads(messages.closing(reason))
    assert live == {messages.LIVE: first} and messages.is_control(live)
    assert closing == {messages.CLOSING: reason} and messages.is_control(closing)


@given(st.integers(min_value=1), st.floats(min_value=0, max_value=1e15), st.text())
def test_an_envelope_is_never_taken_for_a_control_word(seq: int, t: float, data: str) -> None:
    payload = json.loads(make_envelope(seq, t, data).json)
    assert not messages.is_control(payload)


@given(json_values)
def test_any_json_is_a_control_word_exactly_when_it_is_an_object_with_a_control_key(value: object) -> None:
    expected = isinstance(value, dict) and bool(set(value) & {"ping", "pong", "live", "closing"})
    assert messages.is_control(value) is expected


@pytest.mark.parametrize("value", [True, False, "12", None, [1], {"x": 1}])
def test_a_stamp_that_is_not_a_number_is_refused(value: object) -> None:
    """A bool is an int in Python but not a number on the wire: ``{"ping": true}`` has no stamp."""
    assert messages.number_of({messages.PING: value}, messages.PING) is None


@given(json_values)
def test_number_of_never_raises_on_any_decoded_message(value: object) -> None:
    result = messages.number_of(value, messages.PONG)
    assert result is None or (isinstance(result, int | float) and not isinstance(result, bool))
