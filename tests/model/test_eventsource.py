"""The EventSource parser against the WHATWG/WPT eventsource format cases, plus fuzzing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtplay.model.eventsource import MAX_LINE_CHARS, EventStreamParser, MessageEvent, SSEProtocolError


def parse(stream: bytes | str) -> list[MessageEvent]:
    data = stream.encode() if isinstance(stream, str) else stream
    return EventStreamParser().feed(data)


def datas(stream: bytes | str) -> list[str]:
    return [e.data for e in parse(stream)]


# Each case: (WPT test name, stream, expected data of each dispatched event). The expected
# values are those asserted by web-platform-tests eventsource/format-*.htm.
FORMAT_CASES = [
    ("format-bom", "\ufeffdata:1\n\n\ufeffdata:2\n\ndata:3\n\n", ["1", "3"]),
    ("format-bom-2", "\ufeff\ufeffdata:1\n\ndata:2\n\ndata:3\n\n", ["2", "3"]),
    ("format-comments", "data:1\n:\n:comment\ndata:2\n: more\n\n", ["1\n2"]),
    ("format-data-before-final-empty-line", "retry:1000\ndata:test1\n\nid:test\ndata:test2", ["test1"]),
    ("format-field-data", "data:\n\ndata\ndata\n\ndata:test\n\n", ["", "\n", "test"]),
    ("format-field-event-empty", "event: \ndata:data\n\n", ["data"]),
    (
        "format-field-parsing",
        "data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\rdata:\r\n data:32\ndata:4\n\n",
        ["\0\n 2\n1\n3\n\n4"],
    ),
    (
        "format-field-unknown",
        "data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test\n\n",
        ["test\n\ntest"],
    ),
    ("format-leading-space", "data:\ttest\rdata: \ndata:test\n\n", ["\ttest\n\ntest"]),
    ("format-newlines", "data:test\r\ndata\ndata:test\r\n\r", ["test\n\ntest"]),
    ("format-null-character", "data:\0\n\n\n\n", ["\0"]),
    ("format-utf-8", "data:ok\u2026\n\n", ["ok\u2026"]),
    ("one leading space only", "data:  test\n\n", [" test"]),
    ("no blank line at all", "data:lost", []),
]


@pytest.mark.parametrize(("name", "stream", "expected"), FORMAT_CASES, ids=[c[0] for c in FORMAT_CASES])
def test_wpt_format_cases(name: str, stream: str, expected: list[str]) -> None:
    assert datas(stream) == expected


def test_event_field_sets_type_and_resets_after_dispatch() -> None:
    events = parse("event:test\ndata:x\n\ndata:x\n\n")
    assert [e.type for e in events] == ["test", "message"]


@pytest.mark.parametrize(
    ("stream", "ids"),
    [
        ("id: 1\ndata:a\n\n", ["1"]),  # format-field-id
        ("id:1\ndata:1\n\nid:\ndata:2\n\ndata:3\n\n", ["1", "", ""]),  # format-field-id-2: empty resets
        ("id:1\ndata:1\n\nid:2\0\ndata:2\n\n", ["1", "1"]),  # format-field-id-null: NUL ignored
        ("data:1\nid:5\n\n", ["5"]),  # id applies to the event it is in, wherever it stands
    ],
)
def test_id_field(stream: str, ids: list[str]) -> None:
    assert [e.last_event_id for e in parse(stream)] == ids


def test_id_without_data_still_updates_last_event_id() -> None:
    parser = EventStreamParser()
    assert parser.feed(b"id: 7\n\n") == []
    assert parser.last_event_id == "7"


@pytest.mark.parametrize(
    ("stream", "retry"),
    [
        ("retry:03000\ndata:x\n\n", 3000),  # format-field-retry
        ("retry: 1000\n\n", 1000),
        ("retry:1000a\n\n", None),  # format-field-retry-bogus: not digits only
        ("retry:\n\n", None),  # format-field-retry-empty
        ("retry:-1\n\n", None),
        ("retry:1.5\n\n", None),
        ("retry:\u0661\u0662\n\n", None),  # non-ASCII digits are not ASCII digits
    ],
)
def test_retry_field(stream: str, retry: int | None) -> None:
    parser = EventStreamParser()
    parser.feed(stream.encode())
    assert parser.reconnection_time_ms == retry


def test_invalid_utf8_becomes_replacement_character() -> None:
    assert datas(b"data:\xff\xfe\n\n") == ["\ufffd\ufffd"]


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    parser = EventStreamParser()
    events = parser.feed(b"data:a\r") + parser.feed(b"\ndata:b\r") + parser.feed(b"\n\r\n")
    assert [e.data for e in events] == ["a\nb"]


def test_multibyte_character_split_across_chunks() -> None:
    encoded = "data:\u2026\n\n".encode()
    parser = EventStreamParser()
    events = [e for i in range(len(encoded)) for e in parser.feed(encoded[i : i + 1])]
    assert [e.data for e in events] == ["\u2026"]


def test_new_stream_keeps_id_and_retry_and_allows_a_bom_again() -> None:
    parser = EventStreamParser()
    parser.feed(b"retry:500\nid:9\ndata:x\n\ndata:half")
    parser.new_stream()
    assert parser.last_event_id == "9" and parser.reconnection_time_ms == 500
    assert [e.data for e in parser.feed("\ufeffdata:y\n\n".encode())] == ["y"]


def test_overlong_line_is_a_protocol_error() -> None:
    parser = EventStreamParser()
    with pytest.raises(SSEProtocolError, match="line longer"):
        parser.feed(b"data:" + b"x" * (MAX_LINE_CHARS + 1))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_any_bytes_parse_or_raise_only_protocol_error(data: bytes) -> None:
    try:
        EventStreamParser().feed(data)
    except SSEProtocolError:
        pass


_stream_text = st.lists(
    st.sampled_from(["data:", "data: x", "id:", "id: 3", "event:e", "retry:10", ":c", "", "\ufeff", "d\u2026"]),
    max_size=30,
).map(lambda parts: "".join(p + eol for p, eol in zip(parts, ["\n", "\r", "\r\n"] * 20, strict=False)))


@settings(max_examples=300, deadline=None)
@given(_stream_text, st.lists(st.integers(min_value=1, max_value=7), max_size=50))
def test_chunking_never_changes_the_result(text: str, cuts: list[int]) -> None:
    data = text.encode()
    whole = EventStreamParser()
    expected = whole.feed(data)
    chunked = EventStreamParser()
    got: list[MessageEvent] = []
    pos = 0
    for size in cuts:
        got += chunked.feed(data[pos : pos + size])
        pos += size
    got += chunked.feed(data[pos:])
    assert got == expected
    assert chunked.last_event_id == whole.last_event_id
    assert chunked.reconnection_time_ms == whole.reconnection_time_ms


def test_keepalives_are_measured_so_wire_bytes_can_leave_them_out() -> None:
    parser = EventStreamParser()
    parser.feed(b": ping\n\n")
    assert parser.keepalive_chars == len(b": ping\n\n")
    parser.feed(b'id: 1\ndata: {"seq": 1}\n\n: ping\n\n')
    assert parser.keepalive_chars == 2 * len(b": ping\n\n")  # the event's own lines are not keep-alives
