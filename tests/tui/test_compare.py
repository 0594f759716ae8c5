"""The comparison table built from a JSON report."""

from __future__ import annotations

from rtplay.tui.compare import columns, last_fault, table_rows
from tests.tui.demo import demo_report


def test_multi_channel_transports_get_a_column_per_channel() -> None:
    keys = [key for key, *_ in columns(demo_report())]
    assert keys == ["poll", "longpoll", "sse", "ws", "wt/stream", "wt/datagram", "rtc/reliable", "rtc/unreliable"]


def test_rows_hold_every_figure_of_the_report() -> None:
    rows = {key: cells for key, _, cells in table_rows(demo_report())}
    assert rows["delivered"][:4] == ["11804", "11310", "9877", "11900"]
    assert rows["state"][5] == "open"  # connection figures are shared by a transport's channels
    assert rows["latency p99 ms"][0] == "991" and rows["latency p50 ms"][3] == "2.20"
    assert rows["wire bytes/msg"][1] == "118.0"
    assert rows["downtime s"][2] == "45.0"


def test_recovery_rows_are_the_last_fault() -> None:
    report = demo_report()
    fault, records = last_fault(report)
    assert fault == "outage 5s on all" and set(records) == {"poll", "longpoll", "sse", "ws", "wt", "rtc"}
    rows = {key: cells for key, _, cells in table_rows(report)}
    assert rows["recovery-time to recover s"][:4] == ["0.9", "-", "-", "1.4"]
    assert rows["recovery-replayed"][3] == "496"


def test_a_fault_the_client_never_recovered_from_says_failed() -> None:
    report = demo_report()
    report["faults"] = report["faults"][:1]  # only the error 503 on sse
    rows = {key: cells for key, _, cells in table_rows(report)}
    assert rows["recovery-time to recover s"][2] == "failed"
    assert rows["recovery-time to recover s"][0] == "-"  # poll was not in its scope


def test_no_fault_no_recovery_rows() -> None:
    report = demo_report() | {"faults": []}
    assert not [key for key, _, _ in table_rows(report) if key.startswith("recovery")]
