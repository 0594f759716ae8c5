"""rtplay's --fault grammar at a proxy."""

from __future__ import annotations

import pytest

from rtplay.model.faultspec import FaultSpecError
from rtplay.proxy.spec import parse_proxy_fault


def test_delay_with_jitter_on_sse() -> None:
    timed = parse_proxy_fault("delay=300ms±20ms@2s-5s:sse")
    assert (timed.toxic.type, timed.toxic.kind, timed.toxic.stream) == ("delay", "sse", "downstream")
    assert timed.toxic.attributes == {"delay": 300, "jitter": 20}
    assert (timed.start, timed.end) == (2, 5)


def test_message_faults_and_direction() -> None:
    timed = parse_proxy_fault("loss=20%:ws/up")
    assert (timed.toxic.type, timed.toxic.kind, timed.toxic.stream, timed.toxic.attributes) == (
        "loss", "ws", "upstream", {"percent": 20},
    )
    assert parse_proxy_fault("error=503:http").toxic.attributes["status"] == 503
    assert parse_proxy_fault("drop@3s").toxic.kind == "all"


@pytest.mark.parametrize("spec", ["delay=1ms:udp", "crash=3s", "drop:sse/sideways", "delay=x"])
def test_what_a_proxy_cannot_do_is_refused(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_proxy_fault(spec)
