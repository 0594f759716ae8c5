"""Scenario files: parsing, clear errors, expectations, and the shipped scenarios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rtplay.protocol.faults import Kind
from rtplay.scenario import ScenarioError, builtin_names, load_scenario, parse_scenario
from rtplay.session import available_transports

GOOD = """
description = "test"
duration = 2
rate = 20
transports = ["sse", "ws"]
faults = ["drop@1s", "delay=50ms@1s-2s:ws"]
[server]
sse_retry_ms = 200
[clients.ws]
ping_interval = 1
backoff_initial = 0.2
[expect.all]
lost = 0
[expect.sse]
reconnects = ">= 1"
"latency_ms.p99" = "< 500"
state = "open"
"""


def test_a_scenario_parses_into_timeline_options_and_expectations() -> None:
    s = parse_scenario(GOOD, "t.toml")
    assert (s.duration, s.rate, s.transports) == (2.0, 20.0, ["sse", "ws"])
    assert [f.kind for f in s.faults] == [Kind.DROP, Kind.DELAY]
    assert s.http_options()["sse_retry_ms"] == 200
    assert s.client_options["ws"]["ping_interval"] == 1 and s.client_options["ws"]["retry"].initial == 0.2
    assert sorted(map(str, s.expectations)) == sorted(
        ["sse.lost == 0", "ws.lost == 0", "sse.reconnects >= 1.0", "sse.latency_ms.p99 < 500.0", "sse.state == open"]
    )


def report(**sse: object) -> dict:
    entry = {"lost": 0, "reconnects": 0, "state": "open", "latency_ms": {"p99": 12.0}} | sse
    return {"transports": {"sse": entry, "ws": {"lost": 0}}, "faults": []}


def test_expectations_name_what_failed() -> None:
    s = parse_scenario(GOOD, "t.toml")
    assert s.check(report(reconnects=1)) == []
    failures = s.check(report(reconnects=0, state="failed", lost=3))
    assert "sse.reconnects >= 1.0: got 0" in failures
    assert "sse.state == open: got failed" in failures
    assert "sse.lost == 0: got 3" in failures


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("duration = [", "not valid TOML"),
        ("durration = 5", "unknown key(s) durration"),
        ("transports = ['sse', 'fax']", "transports must be"),
        ("faults = ['delay@3s']", "expected '=' and a value"),
        ("duration = -1", "duration: expected a number >= 0.1"),
        ("transports = ['sse']\n[expect.ws]\nlost = 0", "[expect.ws] names a transport the scenario does not run"),
        ("[expect.sse]\nlost = '>> 3'", "cannot read '>> 3'"),
        ("[expect.sse]\nlost = [1]", "expected a value or 'OP NUMBER'"),
        ("[clients.sse]\nretry = 3", "[clients.sse]: no knobs"),
        ("[server]\nport = 80", "[server] keys must be among"),
    ],
)
def test_bad_scenarios_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "bad.toml")
    assert message in str(info.value) and "bad.toml" in str(info.value)


def test_shipped_scenarios_all_load() -> None:
    names = builtin_names()
    assert {"drop-all", "outage", "crash", "flaky-udp", "sse-503", "stall"} <= set(names)
    for name in names:
        assert load_scenario(name).expectations, name


@pytest.mark.parametrize("name", builtin_names())
def test_shipped_scenario_passes_headless(name: str, tmp_path: Path) -> None:
    scenario = load_scenario(name)
    missing = set(scenario.transports) - set(available_transports())
    assert not missing, f"{name} needs {missing}"
    result = subprocess.run(
        [sys.executable, "-m", "rtplay.cli", "run", name, "--quiet", "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "expectations met" in result.stderr
    if name == "sse-503":
        assert "sse failed: HTTP 503: EventSource does not reconnect" in result.stdout
