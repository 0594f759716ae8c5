"""``rtplay run --junit``: JUnit XML a CI system reads, naming what failed with the measured value."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rtplay.cli.junit import junit_xml
from rtplay.cli.main import main
from rtplay.cli.scenario import parse_scenario
from tests.report.conftest import recorded

SCENARIO = """
transports = "all"
[expect.all]
lost = 0
[expect.wt]
"channels.datagram.lost" = 0
"""


def cases(xml: str) -> dict[str, ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "testsuites"
    return {case.get("name", ""): case for case in root.iter("testcase")}


def test_a_failing_expectation_is_a_failure_with_its_measured_value_and_bound(tmp_path: Path) -> None:
    report = recorded("run20", tmp_path).report
    measured = report["transports"]["wt"]["channels"]["datagram"]["lost"]
    assert measured > 0  # the outage cost the datagram channel messages
    xml = junit_xml(parse_scenario(SCENARIO, "udp.toml"), {"": report})
    found = cases(xml)
    assert len(found) == 7  # lost == 0 on six transports, and the datagram expectation
    failed = {name: case.find("failure") for name, case in found.items() if case.find("failure") is not None}
    assert list(failed) == ["wt.channels.datagram.lost == 0"]
    failure = failed["wt.channels.datagram.lost == 0"]
    assert failure is not None and f"got {measured}" in failure.get("message", "")
    assert f"measured: {measured}\nbound: == 0" in (failure.text or "")
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("7", "1")


def test_variants_are_suites_and_each_comparison_a_case(tmp_path: Path) -> None:
    report = recorded("run20", tmp_path).report
    worse: dict[str, Any] = {**report, "transports": {**report["transports"],
                                                      "ws": {**report["transports"]["ws"], "reconnects": 9}}}
    text = SCENARIO + """
[[variants]]
name = "a"
retry = { ws = "exponential:full" }
[[variants]]
name = "b"
retry = { ws = "exponential:none" }
[compare]
"ws.reconnects" = "b <= 1.0 * a"
"""
    xml = junit_xml(parse_scenario(text, "cmp.toml"), {"a": report, "b": worse})
    suites = [s.get("name") for s in ET.fromstring(xml).iter("testsuite")]
    assert suites == ["rtplay.cmp.toml.a", "rtplay.cmp.toml.b", "rtplay.cmp.toml.compare"]
    comparison = cases(xml)["ws.reconnects: b <= 1 * a"]
    failure = comparison.find("failure")
    assert failure is not None and "b: 9" in (failure.text or "") and "got 9" in failure.get("message", "")


def test_rtplay_run_writes_junit_and_fails_on_the_broken_expectation(tmp_path: Path) -> None:
    scenario = tmp_path / "short.toml"
    scenario.write_text('duration = 1.5\nrate = 20\ntransports = ["ws"]\n'
                        '[expect.ws]\nlost = 0\nreconnects = ">= 3"\n')
    junit = tmp_path / "out.xml"
    assert main(["run", str(scenario), "--quiet", "--junit", str(junit)]) == 1
    found = cases(junit.read_text())
    assert set(found) == {"ws.lost == 0", "ws.reconnects >= 3.0"}
    assert found["ws.lost == 0"].find("failure") is None
    failure = found["ws.reconnects >= 3.0"].find("failure")
    assert failure is not None and failure.get("message") == "ws.reconnects >= 3.0: got 0"
