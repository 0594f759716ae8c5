"""The control event stream's vocabulary: every event survives the wire, and nothing else is
read as one."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.protocol.control_events import (
    BufferReset,
    Bye,
    ControlEvent,
    ControlEventError,
    CountersReset,
    FaultChanged,
    Hello,
    ListenersChanged,
    PublisherFigures,
    RateChanged,
    decode,
    encode,
)

EVERY_KIND: list[ControlEvent] = [
    Hello({"published": 3, "faults": []}),
    FaultChanged("started", {"id": 1, "kind": "drop", "scope": "all"}, published=42),
    PublisherFigures(published=10, rate=20.0, replay_from=1, health={"loop_lag_ms": {}}),
    PublisherFigures(published=10, rate=20.0, replay_from=1),
    RateChanged(rate=0.0, published=7, replay_from=2),
    ListenersChanged(up=False),
    BufferReset("crash", first=51),
    BufferReset("too_slow", cut=2),
    CountersReset(),
    Bye("server stopping"),
]


@pytest.mark.parametrize("event", EVERY_KIND, ids=lambda e: type(e).__name__)
def test_every_event_survives_the_wire(event: ControlEvent) -> None:
    assert decode(json.loads(json.dumps(encode(event)))) == event


def test_the_wire_names_are_the_documented_ones() -> None:
    assert [encode(e)["type"] for e in EVERY_KIND] == [
        "hello", "fault", "publisher", "publisher", "rate", "listeners", "reset", "reset", "counters_reset", "bye",
    ]


def test_an_unknown_type_is_skipped_and_a_malformed_known_one_is_refused() -> None:
    assert decode({"type": "from_a_newer_server", "x": 1}) is None
    with pytest.raises(ControlEventError, match="'fault'.*what"):
        decode({"type": "fault", "what": "paused", "fault": {}, "published": 1})
    with pytest.raises(ControlEventError, match="published must be an integer"):
        decode({"type": "rate", "rate": 1, "published": "many", "replay_from": 1})
    with pytest.raises(ControlEventError, match="finite"):
        decode({"type": "publisher", "published": 1, "rate": float("nan"), "replay_from": 1})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(st.sampled_from(["hello", "fault", "publisher", "rate", "listeners", "reset", "counters_reset", "bye", "x"]),
       st.dictionaries(st.sampled_from(["status", "what", "fault", "published", "rate", "replay_from", "health",
                                        "up", "cause", "first", "cut", "reason"]), json_values, max_size=6))
def test_any_object_decodes_or_raises_the_one_error(kind: str, fields: dict[str, object]) -> None:
    try:
        decode({"type": kind, **fields})
    except ControlEventError:
        pass
