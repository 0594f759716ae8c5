"""Items 10 and 11: strict JSON pongs on wt and rtc; each parser's one documented error."""

from __future__ import annotations

import json

import pytest

from rtplay.model.eventsource import MAX_RECONNECTION_TIME_MS, EventStreamParser
from rtplay.protocol.envelope import ProtocolError, decode_json, parse_envelope
from rtplay.protocol.strictjson import JsonError
from rtplay.protocol.wt import pong_for
from servers.rtc.peer import parse_ping as rtc_ping
from servers.runner import Server
from tests.hostile.conftest import post_raw_json, strict_json


@pytest.mark.parametrize("stamp", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_wt_and_rtc_refuse_non_finite_pings_instead_of_answering_nan(stamp: str) -> None:
    line = f'{{"ping": {stamp}}}'
    with pytest.raises(JsonError):
        pong_for(line.encode())
    with pytest.raises(JsonError):
        rtc_ping(line)


def test_wt_pong_is_strict_json() -> None:
    assert strict_json(pong_for(b'{"ping": 12.5}')) == {"pong": 12.5}


def test_a_wt_ping_of_a_thousand_brackets_is_a_bad_ping_not_a_crash() -> None:
    with pytest.raises(JsonError):
        pong_for(b"[" * 1000)


def test_an_rtc_ping_with_a_310_digit_integer_is_answered_exactly() -> None:
    huge = "9" * 310
    assert rtc_ping(f'{{"ping": {huge}}}') == int(huge)
    assert strict_json(pong_for((f'{{"ping": {huge}}}').encode())) == {"pong": int(huge)}


def test_an_sse_retry_of_4301_digits_saturates() -> None:
    parser = EventStreamParser()
    parser.feed(b"retry:" + b"9" * 4301 + b"\n\n")
    assert parser.reconnection_time_ms == MAX_RECONNECTION_TIME_MS


@pytest.mark.parametrize("t", ["9" * 310, "1e400", "-" + "9" * 400])
def test_an_envelope_t_too_large_for_a_double_is_a_protocol_error(t: str) -> None:
    with pytest.raises(ProtocolError):
        parse_envelope(decode_json(f'{{"seq": 1, "t": {t}, "data": ""}}'))


@pytest.mark.parametrize("digits", [5000, 400])
async def test_a_huge_integer_in_a_control_body_is_a_400(server: Server, digits: int) -> None:
    response = await post_raw_json(server, "/control/faults", '{"kind": "delay", "value": %s}' % ("9" * digits))
    assert response.status_code == 400, response.text
    assert "out of range" in strict_json(response.text)["error"]
    rate = await post_raw_json(server, "/control/rate", '{"rate": %s}' % ("9" * digits))
    assert rate.status_code == 400 and json.loads(rate.text)["error"]
