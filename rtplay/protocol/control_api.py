"""The control API described as data: every endpoint, its body fields with their ranges, and
its answers. The server serves it at ``GET /control`` so scripts can discover the API; the
README's table says the same for people. Pure: no I/O.

Ranges come from the fault vocabulary (:mod:`rtplay.protocol.faults`), so the description
cannot drift from what the server accepts.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from rtplay.protocol.faults import ALL, ERROR_CODES, MAX_DURATION_S, TRANSPORTS, UDP_ONLY, VALUE_RANGES, VALUE_UNITS, Kind
from rtplay.protocol.options import MAX_RATE


@dataclass(frozen=True, slots=True)
class BodyField:
    """One field of a request's JSON body."""

    name: str
    type: str
    """``string`` or ``number`` (finite JSON numbers; strings are refused)."""
    required: bool
    meaning: str
    """What it sets, with its range."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route of the control API."""

    method: str
    path: str
    does: str
    answer: str
    """The JSON of a successful answer (and its status when not 200)."""
    body: tuple[BodyField, ...] = ()


FAULT_JSON = '{"id", "kind", "scope", "value", "jitter", "age_s", "remaining_s" (null: until cleared), "text"}'
"""What the answers call a fault."""

ERROR_JSON = '400 {"error": "<what was wrong>"} for any invalid request'


def value_ranges() -> dict[str, str]:
    """The ``value`` each fault kind takes, in words: ``delay: ms >= 0``…"""
    ranges: dict[str, str] = {}
    for kind in Kind:
        unit = VALUE_UNITS.get(kind)
        if unit is None:
            ranges[kind.value] = "no value"
        elif unit == "status":
            ranges[kind.value] = "a status code, one of " + " ".join(str(c) for c in sorted(ERROR_CODES))
        elif unit == "%":
            ranges[kind.value] = "% from 0 to 100"
        else:
            low, high = VALUE_RANGES[unit]
            ranges[kind.value] = f"{unit} >= 0 and <= {high:g}" if low == 0 else f"{unit} from {low:g} to {high:g}"
    return ranges


def _fault_fields() -> tuple[BodyField, ...]:
    kinds = ", ".join(k.value for k in Kind)
    udp = ", ".join(sorted(k.value for k in UDP_ONLY))
    values = "; ".join(f"{kind}: {what}" for kind, what in value_ranges().items() if what != "no value")
    return (
        BodyField("kind", "string", True, f"one of {kinds}"),
        BodyField(
            "scope", "string", False,
            f"{ALL} (default) or one of {', '.join(TRANSPORTS)}; {udp} only wt, rtc or {ALL}",
        ),
        BodyField("value", "number", False, f"required by the kinds that take one: {values}"),
        BodyField("jitter", "number", False, f"delay only: ± ms, >= 0 and <= {VALUE_RANGES['ms'][1]:g}"),
        BodyField(
            "duration", "number", False,
            f"seconds (> 0, <= {MAX_DURATION_S:g}) until the fault ends by itself (outage and crash: their value)",
        ),
    )


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/control", "this description", '{"api", "endpoints": [...], "fault", "error"}'),
    Endpoint(
        "GET", "/control/status", "published count, rate, live connections, faults and the endpoints",
        '{"published", "rate", "connections": {transport: n}, "faults": [fault], "listening", '
        '"endpoints": {"http_url", "wt_url", "quic_port", "cert_sha256", "control_url", ...}}',
    ),
    Endpoint("GET", "/control/faults", "the active faults", '{"faults": [fault]}'),
    Endpoint("POST", "/control/faults", "start a fault", '201 {"fault": fault}', _fault_fields()),
    Endpoint("DELETE", "/control/faults", "clear every fault", '{"cleared": [fault]}'),
    Endpoint(
        "DELETE", "/control/faults/{id}", "clear one fault", '{"cleared": [fault]}; 404 when it is not active'
    ),
    Endpoint("GET", "/control/rate", "the publish rate", '{"rate"}'),
    Endpoint(
        "POST", "/control/rate", "set the publish rate", '{"rate", "published"}',
        (BodyField("rate", "number", True, f"messages per second, 0 to {MAX_RATE:g} (0 = paused)"),),
    ),
    Endpoint(
        "POST", "/control/drop", "abruptly close live connections", '{"dropped": n}',
        (BodyField("transport", "string", False, f"one of {', '.join(TRANSPORTS)} (default: every transport)"),),
    ),
    Endpoint(
        "POST", "/control/reset", "ask every follower (a session) to zero its counters",
        '{"reset": true, "followers": n}',
    ),
    Endpoint(
        "GET", "/control/events", "follow the server",
        "newline-delimited JSON: hello (the full status), then fault, reset, rate, publisher, listeners, "
        "counters_reset",
    ),
)
"""Every endpoint of the control API."""


def describe() -> dict[str, object]:
    """The description as JSON-ready data (what ``GET /control`` answers)."""
    return {
        "api": "rtplay control",
        "content_type": "application/json (request bodies are JSON objects)",
        "endpoints": [asdict(endpoint) for endpoint in ENDPOINTS],
        "fault": FAULT_JSON,
        "error": ERROR_JSON,
    }
