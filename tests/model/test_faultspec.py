import pytest

from rtplay.model.faultspec import FaultSpec, FaultSpecError, parse_fault
from rtplay.protocol.faults import Kind


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("drop@3s", FaultSpec(Kind.DROP, start=3)),
        ("drop", FaultSpec(Kind.DROP)),
        ("delay=300ms@5s-10s:sse", FaultSpec(Kind.DELAY, 300, 0, 5, 10, "sse")),
        ("delay=0.2s±50ms", FaultSpec(Kind.DELAY, 200, 50)),
        ("delay=200+-20@1", FaultSpec(Kind.DELAY, 200, 20, 1)),
        ("loss=20%@2s-8s:wt", FaultSpec(Kind.LOSS, 20, 0, 2, 8, "wt")),
        ("error=503@2s:longpoll", FaultSpec(Kind.ERROR, 503, 0, 2, None, "longpoll")),
        ("outage=4s@500ms", FaultSpec(Kind.OUTAGE, 4, 0, 0.5)),
        ("throttle=5KB/s:ws", FaultSpec(Kind.THROTTLE, 5, scope="ws")),
        ("offline@1s-2s:rtc", FaultSpec(Kind.OFFLINE, None, 0, 1, 2, "rtc")),
    ],
)
def test_valid_specs(spec: str, expected: FaultSpec) -> None:
    assert parse_fault(spec) == expected


@pytest.mark.parametrize(
    ("spec", "position", "expected"),
    [
        ("explode@3s", 0, "a fault kind"),
        ("dropx", 0, "a fault kind"),
        ("delay@3s", 5, "'=' and a value in ms"),
        ("delay=abc", 6, "a number for delay"),
        ("delay=5parsecs", 7, "a unit: ms or s"),
        ("drop=5", 4, "drop takes no value"),
        ("drop@3x", 6, "a time unit"),
        ("delay=5@4s-2s", 11, "an end time after the start"),
        ("loss=20%:sse", 9, "scope must be wt, rtc or all"),
        ("drop:mars", 5, "unknown scope 'mars'"),
        ("error=418", 6, "error code must be one of"),
        ("loss=120%", 5, "0-100%"),
        ("stall@1s junk", 8, "the end of the spec"),
        ("loss=5±1", 7, "only delay takes"),
    ],
)
def test_bad_specs_say_where_and_what(spec: str, position: int, expected: str) -> None:
    with pytest.raises(FaultSpecError) as info:
        parse_fault(spec)
    assert info.value.position == position
    assert expected in str(info.value)


def test_spec_round_trips_through_str() -> None:
    for text in ("delay=300ms±50ms@5s-10s:sse", "loss=20%@2s-8s:wt", "drop@3s", "error=503@2s:longpoll"):
        spec = parse_fault(text)
        assert parse_fault(str(spec)) == spec
