"""Cutting an event stream into events: any split of the bytes gives the same blocks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.model.eventsource import EventStreamParser
from rtplay.proxy.sseframe import BlockReader, BlockTooLong, EventFramer


def test_blocks_end_at_blank_lines_with_any_line_ending() -> None:
    framer = EventFramer()
    stream = b"retry: 300\n\nid: 1\r\ndata: a\r\n\r\n: ping\r\rid: 2\ndata: b\n\ndata: unfinished"
    assert framer.feed(stream) == [b"retry: 300\n\n", b"id: 1\r\ndata: a\r\n\r\n", b": ping\r\r", b"id: 2\ndata: b\n\n"]
    assert framer.rest() == b"data: unfinished"


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    framer = EventFramer()
    assert framer.feed(b"data: a\r\n\r") == []
    assert framer.feed(b"\ndata: b\n\n") == [b"data: a\r\n\r\n", b"data: b\n\n"]


@given(
    st.lists(st.sampled_from([b"data: x", b"id: 7", b": c", b"retry: 5", b"", b"data:\xc3\xa9"]), max_size=30),
    st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=30, max_size=30),
    st.lists(st.integers(0, 400), max_size=10),
)
def test_any_split_gives_the_same_blocks_and_the_same_events(
    lines: list[bytes], ends: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(line + end for line, end in zip(lines, ends, strict=False)) + b"\n\n"
    whole = EventFramer().feed(stream)
    framer = EventFramer()
    pieces: list[bytes] = []
    last = 0
    for cut in sorted(c for c in cuts if c < len(stream)) + [len(stream)]:
        pieces += framer.feed(stream[last:cut])
        last = cut
    assert pieces == whole
    # The blocks, parsed one by one, give exactly the events of the whole stream.
    one, each = EventStreamParser(), EventStreamParser()
    assert [e for b in whole for e in each.feed(b)] == one.feed(stream)
    assert b"".join(whole) + framer.rest() == stream


@given(
    st.lists(
        st.sampled_from([
            b"data: x", b"data", b"data:", b"id: 7", b"id:", b"id: a\x00b", b"id: \xc3\xa9", b"id:\xff", b"retry: 250",
            b"retry: 2x", b"retry:\xd9\xa3", b": comment", b"event: e", b"", b"x: y", b"\xef\xbb\xbfdata: bom", b"ID: 9",
        ]),
        max_size=40,
    ),
    st.lists(st.sampled_from([b"\n", b"\r\n", b"\r"]), min_size=40, max_size=40),
    st.booleans(),
)
def test_the_block_reader_agrees_with_rtplays_parser(lines: list[bytes], ends: list[bytes], bom: bool) -> None:
    """Events fired, last event ID and reconnection time after every block: as the parser says."""
    stream = (b"\xef\xbb\xbf" if bom else b"") + b"".join(line + end for line, end in zip(lines, ends, strict=False)) + b"\n\n"
    parser, reader = EventStreamParser(), BlockReader()
    for block in EventFramer().feed(stream):
        fired = len(parser.feed(block))
        assert int(reader.read(block)) == fired
        assert (reader.last_event_id, reader.reconnection_time_ms) == (parser.last_event_id, parser.reconnection_time_ms)


def test_an_endless_event_is_cut() -> None:
    framer = EventFramer(max_block=1000)
    with pytest.raises(BlockTooLong):
        framer.feed(b"data: " + b"x" * 2000)
