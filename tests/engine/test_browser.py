"""rtplay's side of the browser: report entries with rtplay's fields, recovery from samples."""

from __future__ import annotations

from typing import Any

from rtplay.engine.browser import (
    Sample,
    chromium_flags,
    loopback_only,
    page_channels,
    recovery,
    report_entries,
    side_by_side,
)
from rtplay.engine.browser_figures import next_starts
from rtplay.model.browser_journal import BrowserAccounts


def channel() -> dict[str, Any]:
    return {"delivered": 0, "missing": 0, "highest": 0, "lost_to_reset": 0,  # the page's own view, unused
            "duplicates": 0, "out_of_order": 0, "latency_ms": {"p50": 3.0, "p95": 5.0, "p99": 6.0, "max": 9.0}}


def client(state: str, *names: str) -> dict[str, Any]:
    return {"state": state, "connects": 2, "reconnects": 1, "downtime_s": 0.5,
            "channels": {n: channel() for n in names}, "log": []}


def test_entries_have_rtplays_fields_and_are_counted_by_rtplays_model_from_the_journal() -> None:
    accounts = BrowserAccounts(*page_channels())
    accounts.feed([
        ["ws", "start", 0], ["ws", "up", 1.0], ["ws", "seq", "main", 1, 95], ["ws", "seq", "main", 98, 98],
        ["sse", "up", 1.0], ["sse", "seq", "main", 1, 40], ["sse", "failed", 2.0, 54],
        ["wt", "up", 1.0], ["wt", "live", "datagram", 1], ["wt", "seq", "stream", 1, 100],
        ["wt", "seq", "datagram", 1, 60],
    ])
    clients = {"ws": client("open", "main"),
               "sse": client("failed", "main") | {"failed_reason": "the browser gave up"},
               "wt": client("open", "stream", "datagram")}
    entries = report_entries(clients, accounts, published=100, final=True)
    # As rtplay's model: holes below the highest seen are lost; the tail of a live client is pending.
    assert (entries["ws"]["lost"], entries["ws"]["pending"], entries["ws"]["delivered"]) == (2, 2, 96)
    assert "channels" not in entries["ws"]
    # A client that gave up stopped subscribing when it failed: the tail up to then is lost.
    assert (entries["sse"]["lost"], entries["sse"]["pending"]) == (14, 0)
    assert entries["sse"]["failed_reason"] == "the browser gave up"
    # Live-only channels by rtplay's definition: the settled tail is lost while connected.
    datagram = entries["wt"]["channels"]["datagram"]
    assert (datagram["lost"], datagram["lost_while_connected"], datagram["lost_while_down"]) == (40, 40, 0)
    assert entries["wt"]["delivered"] == 100  # the first channel is the transport's row
    assert entries["ws"]["latency_ms"]["p99"] == 6.0  # timed by the page
    assert set(entries["ws"]) >= {"state", "delivered", "lost", "lost_to_reset", "duplicates", "out_of_order",
                                  "latency_ms", "connects", "reconnects", "downtime_s", "wire_bytes_per_msg"}


def samples(*rows: tuple[float, str, int]) -> list[Sample]:
    return [Sample(at, {"ws": (state, count)}) for at, state, count in rows]


def test_recovery_from_samples() -> None:
    # A client that never leaves open is timed by the samples: the first new message after the end.
    steady = samples((9.75, "open", 100), (10.0, "open", 100), (10.25, "open", 105))
    assert recovery(steady, "ws", 10.0, 10.0) == {"time_to_detect_s": None, "time_to_recover_s": 0.25,
                                                  "final_state": "open"}
    # One that gives up.
    gave_up = samples((9.75, "open", 100), (10.25, "failed", 100), (11.0, "failed", 100))
    assert recovery(gave_up, "ws", 10.0, 10.0)["final_state"] == "failed"
    assert recovery(gave_up, "ws", 10.0, 10.0)["time_to_recover_s"] is None
    assert recovery(gave_up, "sse", 10.0, 10.0)["final_state"] == "unknown"


def test_recovery_of_a_client_that_went_down_is_timed_by_the_pages_own_events() -> None:
    # An outage from 10 to 15 s: no sample in between (the report endpoint was down too).
    run = samples((9.75, "open", 100), (15.75, "open", 140))
    wall = 1_000.0  # wall clock minus session clock
    events = [["down", (10.04 + wall) * 1000], ["back", (17.5 + wall) * 1000]]
    figures = recovery(run, "ws", 10.0, 15.0, events, wall_offset=wall)
    assert figures == {"time_to_detect_s": 0.04, "time_to_recover_s": 2.5, "final_state": "open"}
    # Events before the fault, or long after it, are not its detection.
    early = [["down", (5.0 + wall) * 1000], ["back", (5.5 + wall) * 1000]]
    assert recovery(run, "ws", 10.0, 15.0, early, wall_offset=wall)["time_to_detect_s"] is None


def test_a_down_stamped_just_before_the_faults_start_is_its_detection() -> None:
    # Issue 23 item 2: the server crashes the connections before its "fault started" event
    # reaches the session, so the page's down is stamped a few ms before the fault's start.
    run = samples((2.75, "open", 100), (6.75, "open", 180))
    events = [["down", 2_996.0], ["back", 4_300.0]]  # wall clock = session clock (offset 0)
    figures = recovery(run, "ws", 3.0, 6.0, events)
    assert figures["time_to_detect_s"] == 0.0
    assert figures["time_to_recover_s"] == 0.0  # back at 4.3 s, before the fault's 6 s end
    assert recovery(run, "ws", 3.0, 3.0, events)["time_to_recover_s"] == 1.3


def test_a_down_belongs_to_the_fault_that_owns_it_not_to_an_earlier_one() -> None:
    # 503 on sse from 3 s (nothing drops: the page stays open), then a drop on sse at 5 s.
    faults = [{"transport": "sse", "start_s": 3.0, "end_s": 8.0}, {"transport": "sse", "start_s": 5.0, "end_s": None},
              {"transport": "ws", "start_s": 4.0, "end_s": None}]
    assert next_starts(faults) == [5.0, None, None]
    run = samples((2.75, "open", 100), (9.0, "failed", 100))
    events = [["down", 5_010.0]]
    assert recovery(run, "sse", 3.0, 8.0, events, until=5.0)["time_to_detect_s"] is None
    assert recovery(run, "sse", 5.0, 5.0, events)["time_to_detect_s"] == 0.01


def test_side_by_side_marks_where_the_two_differ() -> None:
    fault = {"fault": "error 503 on sse", "transport": "sse", "start_s": 3.0, "end_s": 6.0,
             "time_to_detect_s": 0.01, "time_to_recover_s": None, "failed": "HTTP 503"}
    report = {
        "transports": {"sse": {"state": "failed"}},
        "faults": [fault, fault | {"transport": "ws", "failed": None, "time_to_recover_s": 0.4}],
        "browser": {"faults": [
            {"fault": "error 503 on sse", "transport": "sse", "start_s": 3.0, "end_s": 6.0,
             "time_to_detect_s": 0.25, "time_to_recover_s": None, "final_state": "failed"},
            {"fault": "error 503 on sse", "transport": "ws", "start_s": 3.0, "end_s": 6.0,
             "time_to_detect_s": None, "time_to_recover_s": None, "final_state": "open"},
        ]},
    }
    sse, ws = side_by_side(report)
    assert sse["differs"] == [] and sse["browser"]["final"] == "failed"
    assert ws["rtplay"]["final"] == "?" and ws["differs"] == ["final state", "noticed"]


def test_chromium_flags_allow_loopback_webrtc_only_on_a_loopback_only_host() -> None:
    assert loopback_only(["lo"]) and not loopback_only(["lo", "eth0"])
    lan = chromium_flags(4433, loopback=False)
    assert "--origin-to-force-quic-on=127.0.0.1:4433" in lan and "--headless" in lan
    assert "--allow-loopback-in-peer-connection" not in lan
    assert "--allow-loopback-in-peer-connection" in chromium_flags(4433, loopback=True)
    assert not any("fake" in flag for flag in chromium_flags(4433, loopback=True))
