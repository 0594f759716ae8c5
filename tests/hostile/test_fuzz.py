"""Item 11: every parser and grammar either parses or raises its one documented error.

h11's fuzz invariant, applied to each parser of outside input: control bodies, pings (ws, wt,
rtc), the SSE stream (``retry:`` aimed at long fields), envelopes, resume cursors, the wt
CONNECT and close capsule, WebRTC offers, fault and retry specs, scenario TOML. Example counts
come from the Hypothesis profile (``tests/conftest.py``): modest in the suite,
``HYPOTHESIS_PROFILE=fuzz`` for a long run.
"""

from __future__ import annotations

import json
import math
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtplay.cli.scenario import ScenarioError, parse_scenario
from rtplay.model.eventsource import (
    MAX_RECONNECTION_TIME_MS,
    EventStreamParser,
    SSEProtocolError,
)
from rtplay.model.faultspec import FaultSpecError, parse_fault
from rtplay.model.retry_spec import RetrySpecError, parse_policy
from rtplay.protocol.envelope import ProtocolError, decode_json, parse_envelope
from rtplay.protocol.messages import parse_ping
from rtplay.protocol.strictjson import JsonError, loads_strict
from rtplay.protocol.wt import parse_close_capsule, pong_for
from servers.core.cursor import parse_cursor
from servers.http.ws import ping_number
from servers.quic.wtproto import RequestError, parse_connect
from servers.rtc import peer
from servers.rtc.ice import OfferError, parse_offer

#: Pieces that break naive parsers: deep nesting, huge numbers, non-finite constants.
NASTY = st.sampled_from([
    "[" * 1014, "{\"a\":" * 600, "9" * 310, "9" * 4301, "-" + "9" * 5000, "1e400", "NaN", "Infinity",
    "-Infinity", "\ufeff", "\x00", "\ud800", "]", "}", ",", ":", '"', "\\", "\n", "\r",
])
JSONISH = st.lists(st.one_of(NASTY, st.text(max_size=20), st.sampled_from(['{"ping": ', "}", "[", "1", "."])), max_size=8).map("".join)
FAR = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _long_digits() -> st.SearchStrategy[str]:
    """``retry:`` fields aimed at length: short, around 18 digits, and past 4,300 digits."""
    return st.one_of(
        st.integers(min_value=0, max_value=10**20).map(str),
        st.integers(min_value=4290, max_value=6000).map(lambda n: "9" * n),
        st.tuples(st.integers(0, 5000), st.integers(1, 40)).map(lambda z: "0" * z[0] + "7" * z[1]),
    )


@FAR
@given(st.one_of(JSONISH, st.binary(max_size=64)))
def test_strict_json_raises_only_json_error(data: str | bytes) -> None:
    try:
        value = loads_strict(data)
    except JsonError:
        return
    json.dumps(value, allow_nan=False)  # what parsed is strict JSON


@FAR
@given(st.one_of(JSONISH, st.builds(lambda n: f'{{"ping": {n}}}', NASTY | st.floats().map(repr))))
def test_pings_on_wt_and_rtc_raise_only_value_error_and_answer_strict_json(line: str) -> None:
    for answer in (lambda: pong_for(line.encode('utf-8', 'surrogatepass')), lambda: peer.parse_ping(line), lambda: parse_ping(line)):
        try:
            result = answer()
        except JsonError:
            continue
        text = result.decode() if isinstance(result, bytes) else json.dumps({"pong": result}, allow_nan=False)
        json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in a pong"))


@FAR
@given(JSONISH)
def test_ws_ping_number_raises_only_its_documented_errors(text: str) -> None:
    try:
        number = ping_number(text)
    except (JsonError, KeyError, TypeError):
        return
    assert math.isfinite(float(json.loads(number))) or json.loads(number) == int(number)


@given(_long_digits(), st.sampled_from(["\n", "\r\n", "\r"]))
def test_sse_retry_of_any_length_sets_a_bounded_time(digits: str, end: str) -> None:
    parser = EventStreamParser()
    parser.feed(f"retry:{digits}{end}data:x{end}{end}".encode())
    significant = digits.lstrip("0") or "0"
    exact = int(significant) if len(significant) <= 30 else None
    assert parser.reconnection_time_ms == (min(exact, MAX_RECONNECTION_TIME_MS) if exact is not None else MAX_RECONNECTION_TIME_MS)


@FAR
@given(st.lists(st.one_of(st.binary(max_size=40), _long_digits().map(lambda d: f"retry:{d}\n".encode())), max_size=6))
def test_sse_parser_raises_only_its_protocol_error(chunks: list[bytes]) -> None:
    parser = EventStreamParser()
    try:
        for chunk in chunks:
            parser.feed(chunk)
    except SSEProtocolError:
        pass


@FAR
@given(st.one_of(JSONISH, st.builds(lambda s, t: f'{{"seq": {s}, "t": {t}, "data": ""}}', NASTY, NASTY)))
def test_envelopes_raise_only_protocol_error(text: str) -> None:
    try:
        received = parse_envelope(decode_json(text))
    except ProtocolError:
        return
    assert math.isfinite(received.t) and received.seq >= 1


@given(st.one_of(st.none(), st.text(max_size=30), _long_digits()))
def test_resume_cursors_raise_only_value_error(raw: str | None) -> None:
    try:
        assert parse_cursor(raw) >= 0
    except ValueError:
        pass


@given(st.lists(st.tuples(st.sampled_from([b":path", b":method", b":protocol", b"x"]), st.binary(max_size=30)), max_size=5),
       st.one_of(st.binary(max_size=20), _long_digits().map(str.encode)))
def test_wt_connect_raises_only_request_error(headers: list[tuple[bytes, bytes]], since: bytes) -> None:
    headers = [*headers, (b":path", b"/wt?since=" + since), (b":method", b"CONNECT"), (b":protocol", b"webtransport")]
    try:
        parse_connect(headers)
    except RequestError:
        pass


@given(st.binary(max_size=80))
def test_close_capsules_never_raise(data: bytes) -> None:
    assert parse_close_capsule(data) is None or isinstance(parse_close_capsule(data), str)


@FAR
@given(st.one_of(JSONISH, st.builds(lambda s: json.dumps({"type": "offer", "sdp": "v=0\r\n" + s}), st.text(max_size=80))))
def test_rtc_offers_raise_only_offer_error(body: str) -> None:
    try:
        parse_offer(body.encode("utf-8", "surrogatepass"), "127.0.0.1")
    except OfferError:
        pass


@given(st.one_of(st.text(max_size=30), st.builds("{}={}@{}".format, st.sampled_from(["delay", "loss", "outage"]), NASTY, NASTY)))
def test_fault_specs_raise_only_fault_spec_error(spec: str) -> None:
    try:
        parse_fault(spec)
    except FaultSpecError:
        pass


@given(st.one_of(st.text(max_size=30), st.builds("exponential:base={},cap={}".format, NASTY, NASTY), st.builds("fixed:{}".format, NASTY)))
def test_retry_specs_raise_only_retry_spec_error(spec: str) -> None:
    try:
        parse_policy(spec)
    except RetrySpecError:
        pass


TOML_NASTY = st.sampled_from([
    "x = " + "[" * 1014, "x = " + "{a=" * 1014, "rate = " + "9" * 310, "rate = " + "9" * 4400, "duration = 1e400",
    "rate = nan", "rate = inf", 'transports = ["sse"]', "[expect.sse]\nlost = '<= " + "9" * 400 + "'",
    "[expect.sse]\nlost = " + "9" * 400, "faults = ['delay=" + "9" * 400 + "ms@1s']", "[clients.ws]\nretry = 'fixed:" + "9" * 400 + "'",
])


@FAR
@given(st.lists(st.one_of(TOML_NASTY, st.text(max_size=20)), max_size=4).map("\n".join))
def test_scenarios_raise_only_scenario_error(text: str) -> None:
    assert sys.getrecursionlimit() >= 1000
    try:
        parse_scenario(text, "fuzz")
    except ScenarioError:
        pass


@pytest.mark.parametrize("text", ["x = " + "[" * 1014 + "]" * 1014, "rate = " + "9" * 4400, "rate = " + "9" * 310])
def test_the_reported_scenario_inputs_are_a_scenario_error(text: str) -> None:
    with pytest.raises(ScenarioError):
        parse_scenario(text, "bad")
