"""The session's mirror of the server, fed the events ``GET /control/events`` carries. Pure."""

from __future__ import annotations

import ssl

from rtplay.engine.control_client import ServerMirror, tls_for
from rtplay.protocol.control_events import ControlEvent, decode
from rtplay.protocol.faults import Fault, Kind


def wire(obj: dict[str, object]) -> ControlEvent:
    """The event as a follower reads it off the stream."""
    event = decode(obj)
    assert event is not None
    return event


def fault_json(fault_id: int, kind: str = "delay", scope: str = "ws", value: float | None = 200) -> dict[str, object]:
    return {"id": fault_id, "kind": kind, "scope": scope, "value": value, "jitter": 0, "age_s": 1.0,
            "remaining_s": None, "text": "…"}


def test_the_mirror_follows_figures_faults_and_resets() -> None:
    mirror = ServerMirror()
    mirror.apply(wire({"type": "hello", "status": {"published": 5, "rate": 10, "listening": True,
                                              "faults": [fault_json(1)]}}), now=100.0)
    assert (mirror.published, mirror.rate) == (5, 10.0)
    [active] = mirror.active()
    assert active.kind is Kind.DELAY and active.started == 99.0  # moved onto our clock
    mirror.apply(wire({"type": "publisher", "published": 50, "rate": 10, "replay_from": 1}), now=101.0)
    mirror.apply(wire({"type": "publisher", "published": 40, "rate": 10, "replay_from": 1}), now=101.1)  # never backwards
    assert mirror.published == 50
    started = {"type": "fault", "what": "started", "fault": fault_json(2, "offline", "sse", None), "published": 50}
    change = mirror.apply(wire(started), 102.0)
    assert change is not None and change[0] == "started" and mirror.has(Kind.OFFLINE, "sse")
    mirror.apply(wire({"type": "fault", "what": "started", "fault": fault_json(3, "drop", "all", None), "published": 50}), 102.0)
    assert [f.id for f in mirror.active()] == [1, 2]  # a one-shot fault is never active
    mirror.apply(wire({"type": "listeners", "up": False}), 103.0)
    mirror.apply(wire({"type": "reset", "cause": "crash", "first": 51}), 103.5)
    mirror.apply(wire({"type": "reset", "cause": "too_slow", "cut": 2}), 104.0)
    assert (mirror.listening, mirror.crashes, mirror.too_slow_cuts) == (False, 1, 2)


def test_a_late_started_event_does_not_revive_a_fault_we_cleared() -> None:
    mirror = ServerMirror()
    fault = Fault.from_json(fault_json(7), now=10.0)
    mirror.started(fault)  # our command's answer
    mirror.ended(7)  # our clear's answer, before either event arrived
    mirror.apply(wire({"type": "fault", "what": "started", "fault": fault_json(7), "published": 50}), 10.1)
    assert mirror.active() == []
    mirror.apply(wire({"type": "fault", "what": "ended", "fault": fault_json(7), "published": 50}), 10.2)
    assert mirror.active() == []


def test_a_plain_http_control_url_loads_no_ca_store_and_https_verifies() -> None:
    plain = tls_for("http://127.0.0.1:8001/control")
    assert isinstance(plain, ssl.SSLContext) and plain.cert_store_stats()["x509_ca"] == 0
    assert tls_for("https://rtplay.example:8001/control") is True
