"""The long-poll's HTTP/1.1 response reader: framing, strictness, bounds, any chunking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtplay.model.http1 import Answer, ResponseReader
from rtplay.protocol.envelope import ProtocolError

#: What rtplay's server sends for a long-poll answer (aiohttp's own header fields).
HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
    b"Access-Control-Allow-Origin: *\r\nContent-Length: %d\r\n"
    b"Date: Mon, 07 Dec 2026 10:29:15 GMT\r\nServer: Python/3.11 aiohttp/3.14.5\r\n\r\n"
)
BODY = b'{"messages":[{"seq":4,"t":1796639354644.532,"data":"msg-4"}],"last":4}'
ANSWER = HEAD % len(BODY) + BODY

#: The same answer as a proxy in front of the server may re-frame it (RFC 9112 §7.1).
CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
CHUNKED = CHUNKED_HEAD + b"10;ext=1\r\n" + BODY[:16] + b"\r\n%x\r\n" % (len(BODY) - 16) + BODY[16:] + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"


def read(*chunks: bytes, eof: bool = False) -> list[Answer]:
    reader, answers = ResponseReader(), []
    for chunk in chunks:
        if (answer := reader.feed(chunk)) is not None:
            answers.append(answer)
    if eof and (answer := reader.feed_eof()) is not None:
        answers.append(answer)
    return answers


def test_an_answer_in_one_piece() -> None:
    [answer] = read(ANSWER)
    assert (answer.status, answer.body, answer.keep_alive, answer.retry_after) == (200, BODY, True, None)
    assert answer.head_bytes == len(HEAD % len(BODY))  # wire bytes: exactly the head as sent


@given(st.lists(st.integers(min_value=0, max_value=len(ANSWER)), max_size=8))
def test_any_split_reads_the_same(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(ANSWER)]
    chunks = [ANSWER[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert read(*chunks) == read(ANSWER)


def test_answers_follow_each_other_on_one_connection() -> None:
    reader = ResponseReader()
    assert reader.feed(ANSWER) is not None and not reader.started
    no_content = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"
    assert reader.feed(no_content) == Answer(204, len(no_content), b"", None, True)


@given(st.lists(st.integers(min_value=0, max_value=len(CHUNKED)), max_size=8))
def test_a_chunked_answer_in_any_split_reads_as_its_content(cuts: list[int]) -> None:
    points = [0, *sorted(cuts), len(CHUNKED)]
    reader = ResponseReader()
    answers = [reader.feed(CHUNKED[a:b]) for a, b in zip(points, points[1:], strict=False)]
    assert [(a.status, a.body, a.keep_alive) for a in answers if a is not None] == [(200, BODY, True)]
    assert reader.feed(ANSWER) is not None  # the connection carries the next answer


def test_a_chunked_answer_is_bounded_and_cut_short_is_an_error() -> None:
    with pytest.raises(ProtocolError, match="larger than 10"):
        ResponseReader(max_body=10).feed(CHUNKED_HEAD + b"b\r\n")
    with pytest.raises(ProtocolError, match="chunk line longer"):
        ResponseReader().feed(CHUNKED_HEAD + b"1" * 5000)
    with pytest.raises(ProtocolError, match="trailer section longer"):
        ResponseReader().feed(CHUNKED_HEAD + b"0\r\n" + b"X: y\r\n" * 1000)
    with pytest.raises(ProtocolError, match="after 2 bytes of a chunked response"):
        read(CHUNKED_HEAD + b"2\r\nok\r\n", eof=True)


def test_a_503_carries_its_retry_after_and_204_has_no_body() -> None:
    [answer] = read(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}")
    assert (answer.status, answer.retry_after, answer.body) == (503, "3", b"{}")
    # RFC 9110 §6.4.1: a 204 ends at its head whatever it says of a length.
    [empty] = read(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n")
    assert empty.body == b""


def test_interim_answers_are_skipped() -> None:
    assert read(b"HTTP/1.1 100 Continue\r\n\r\n" + ANSWER) == read(ANSWER)


def test_connection_close_and_a_body_delimited_by_the_close() -> None:
    [closing] = read(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
    assert not closing.keep_alive
    [to_end] = read(b"HTTP/1.0 200 OK\r\n\r\nall ", b"of it", eof=True)
    assert (to_end.body, to_end.keep_alive) == (b"all of it", False)


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "status line"),
        (b"HTTP/1.1 20 OK\r\n\r\n", "status line"),
        (b"<html>hello</html>\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "malformed header"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", "conflicting"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", "both"),
        (CHUNKED_HEAD + b"zz\r\nok\r\n", "chunk-size"),
        (CHUNKED_HEAD + b"2\r\nokay\r\n0\r\n\r\n", "longer than its chunk-size"),
        (CHUNKED_HEAD + b"2\r\nok\r\n0\r\n\r\nHTTP", "unexpected bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nok", "Content-Encoding"),
        (ANSWER + b"HTTP", "unexpected bytes"),
    ],
)
def test_a_malformed_answer_is_a_clear_protocol_error(stream: bytes, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        read(stream)


def test_an_answer_cut_short_by_the_close_is_an_error_and_no_answer_is_none() -> None:
    with pytest.raises(ProtocolError, match="after 3 of the response's 70 body bytes"):
        read((HEAD % 70) + b"abc", eof=True)
    with pytest.raises(ProtocolError, match="middle of the response head"):
        read(b"HTTP/1.1 200", eof=True)
    assert read(eof=True) == []  # closed before any byte: the request may be sent again


def test_every_buffer_is_bounded() -> None:
    with pytest.raises(ProtocolError, match="head longer than 64"):
        ResponseReader(max_head=64).feed(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20)
    with pytest.raises(ProtocolError, match="head longer than 64"):
        ResponseReader(max_head=64).feed(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20 + b"\r\n")
    with pytest.raises(ProtocolError, match="more than 10"):
        ResponseReader(max_body=10).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    reader = ResponseReader(max_body=10)
    reader.feed(b"HTTP/1.0 200 OK\r\n\r\n0123456789")
    with pytest.raises(ProtocolError, match="larger than 10"):
        reader.feed(b"!")


@given(st.lists(st.binary(max_size=64), max_size=8), st.booleans())
def test_any_bytes_parse_or_raise_a_protocol_error(chunks: list[bytes], eof: bool) -> None:
    try:
        read(*chunks, eof=eof)
    except ProtocolError:
        pass


@given(st.lists(st.sampled_from([ANSWER[:30], ANSWER[30:], b"\r\n", b":", b" ", b"HTTP/1.1 ", b"200"]), max_size=10))
def test_near_http_bytes_parse_or_raise_a_protocol_error(chunks: list[bytes]) -> None:
    try:
        read(*chunks, eof=True)
    except ProtocolError:
        pass
