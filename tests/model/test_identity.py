"""The stated identity of a target's messages: grammar and extraction (rtplay.model.identity)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.model.identity import (
    MAX_MESSAGE_BYTES,
    Identity,
    IdentityError,
    Unreadable,
    UnreadableMessage,
    lookup,
    parse_path,
    parse_resume,
    parse_seq,
    parse_target,
    parse_time,
    show_path,
)


def test_sse_id_reads_the_event_id_as_the_seq() -> None:
    identity = Identity(parse_seq("sse-id"))
    assert identity.identify("not json at all", "42").seq == 42
    with pytest.raises(UnreadableMessage) as exc:
        identity.identify("x", "abc")
    assert exc.value.why is Unreadable.NO_SEQ
    with pytest.raises(UnreadableMessage):
        identity.identify("x", None)


def test_json_path_reads_nested_keys_and_array_indexes() -> None:
    identity = Identity(parse_seq("json:data.items.1.id"), parse_time("json:meta.at:s"))
    message = json.dumps({"data": {"items": [{"id": 1}, {"id": "77"}]}, "meta": {"at": 1700000000.5}})
    found = identity.identify(message)
    assert found.seq == 77  # a string of digits is a seq too
    assert found.sent_ms == 1700000000500.0


@pytest.mark.parametrize(
    ("message", "why"),
    [
        ("plain text", Unreadable.NOT_JSON),
        ('{"other": 1}', Unreadable.NO_SEQ),
        ('{"seq": 1.5}', Unreadable.NO_SEQ),
        ('{"seq": true}', Unreadable.NO_SEQ),
        ('{"seq": 3, "t": "soon"}', Unreadable.NO_TIME),
        ('{"seq": 3}', Unreadable.NO_TIME),
    ],
)
def test_a_message_without_the_stated_identity_says_why(message: str, why: Unreadable) -> None:
    identity = Identity(parse_seq("json:seq"), parse_time("json:t"))
    with pytest.raises(UnreadableMessage) as exc:
        identity.identify(message)
    assert exc.value.why is why


def test_an_oversized_message_is_not_parsed() -> None:
    with pytest.raises(UnreadableMessage) as exc:
        Identity(parse_seq("json:seq")).identify(b"[" * (MAX_MESSAGE_BYTES + 1))
    assert exc.value.why is Unreadable.OVERSIZED


def test_time_units() -> None:
    def sent(unit: str, value: object) -> float | None:
        return Identity(time=parse_time(f"json:t:{unit}")).identify(json.dumps({"t": value})).sent_ms

    assert sent("ms", 1700000000123.25) == 1700000000123.25
    assert sent("s", 2) == 2000.0
    assert sent("iso", "1970-01-01T00:00:01.5+00:00") == 1500.0
    assert sent("iso", "1970-01-01T00:00:01Z") == 1000.0
    with pytest.raises(UnreadableMessage):
        sent("iso", "1970-01-01T00:00:01")  # no offset: whose clock?
    assert Identity(time=parse_time("json:t")).time.unit == "ms"


def test_resume_templates_fill_the_cursor_once_there_is_one() -> None:
    since = parse_resume("?since={seq}")
    assert since.url("ws://h:1/live", None) == "ws://h:1/live"
    assert since.url("ws://h:1/live", 41) == "ws://h:1/live?since=41"
    assert since.url("http://h/lp?room=a", 41) == "http://h/lp?room=a&since=41"
    assert parse_resume("&after={seq}").url("http://h/lp", 7) == "http://h/lp?after=7"
    assert parse_resume("ws://h/from/{seq}").url("ws://h/live", 9) == "ws://h/from/9"
    assert parse_resume("ws://h/from/{seq}").url("ws://127.0.0.1:5/live", 9) == "ws://127.0.0.1:5/from/9"  # via a proxy


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_seq, "json:"),
        (parse_seq, "json:a..b"),
        (parse_seq, "id"),
        (parse_time, "json:t:minutes"),
        (parse_time, "t"),
        (parse_resume, "?since=5"),
        (parse_resume, "since={seq}"),
        (parse_target, "sse"),
        (parse_target, "wt=https://h/x"),
        (parse_target, "ws=http://h/x"),
        (parse_target, "sse=ws://h/x"),
        (parse_target, "poll=http:///nohost"),
    ],
)
def test_bad_specs_are_refused_clearly(parse: object, text: str) -> None:
    with pytest.raises(IdentityError):
        parse(text)  # type: ignore[operator]


def test_parse_target() -> None:
    assert parse_target("ws=ws://localhost:3000/socket") == ("ws", "ws://localhost:3000/socket")


keys = st.one_of(st.text(alphabet="abcxyz_", min_size=1, max_size=5), st.integers(0, 5))


@given(st.lists(keys, min_size=1, max_size=6))
def test_a_path_reads_back_as_written(path: list[str | int]) -> None:
    assert parse_path(show_path(tuple(path))) == tuple(path)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["seq", "t", "a"]), inner, max_size=3),
    max_leaves=10,
)


@given(st.one_of(json_values.map(json.dumps), st.text(max_size=30)), st.one_of(st.none(), st.text(max_size=5)))
def test_any_message_is_read_or_refused_with_a_reason(message: str, event_id: str | None) -> None:
    for identity in (Identity(parse_seq("json:a.0.seq"), parse_time("json:t:iso")),
                     Identity(parse_seq("sse-id"), parse_time("json:t:s")), Identity()):
        try:
            found = identity.identify(message, event_id)
        except UnreadableMessage as exc:
            assert isinstance(exc.why, Unreadable)
            continue
        assert found.seq is None or isinstance(found.seq, int)


def test_lookup_misses_raise_key_error() -> None:
    with pytest.raises(KeyError):
        lookup({"a": [1]}, ("a", 3))
    with pytest.raises(KeyError):
        lookup([1], ("x",))
