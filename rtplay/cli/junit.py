"""``rtplay run --junit FILE``: a scenario's expectations as JUnit XML, for CI systems.

One ``<testsuite>`` per run (per variant when the scenario has variants), one ``<testcase>``
per expectation; the variants' comparisons are one more suite. A failed check is a
``<failure>`` whose message is the one ``rtplay run`` prints (``FAILED …``) and whose
attributes and text carry the measured value and the bound. The layout is the common JUnit
one (Ant's ``junit`` task, as read by Jenkins, GitLab and GitHub Actions reporters).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from typing import Any

from rtplay.cli.scenario import Scenario, lookup
from rtplay.cli.variants import value_at


def _measured(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _case(suite: ET.Element, classname: str, name: str, failure: str | None, measured: str, bound: str) -> None:
    case = ET.SubElement(suite, "testcase", classname=classname, name=name, time="0")
    if failure is not None:  # before system-out, as the JUnit schema orders them
        node = ET.SubElement(case, "failure", message=failure, type="ExpectationFailed")
        node.text = f"{failure}\nmeasured: {measured}\nbound: {bound}\n"
    ET.SubElement(case, "system-out").text = f"measured: {measured}\nbound: {bound}\n"


def _suite(root: ET.Element, name: str, report: Mapping[str, Any] | None = None) -> ET.Element:
    suite = ET.SubElement(root, "testsuite", name=name)
    if report is not None:
        props = ET.SubElement(suite, "properties")
        for key in ("published", "duration_s", "settled", "partial"):
            if key in report:
                ET.SubElement(props, "property", name=key, value=json.dumps(report[key]))
    return suite


def _count(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", "0")
    suite.set("time", suite.get("time", "0"))


def junit_xml(scenario: Scenario, reports: Mapping[str, dict[str, Any]]) -> str:
    """The JUnit XML of ``scenario``'s checks over ``reports`` (``{"": report}`` without variants)."""
    root = ET.Element("testsuites", name=f"rtplay {scenario.name}")
    for variant, report in reports.items():
        label = f"rtplay.{scenario.name}" + (f".{variant}" if variant else "")
        suite = _suite(root, label, report)
        suite.set("time", str(report.get("duration_s", 0)))
        for expectation in scenario.expectations:
            entry = report["transports"].get(expectation.transport)
            measured = (f"<transport {expectation.transport} did not run>" if entry is None
                        else lookup(entry, expectation.path, report, expectation.transport))
            _case(suite, label, str(expectation), expectation.check(report), _measured(measured),
                  f"{expectation.op} {expectation.expected}")
        _count(suite)
    if scenario.comparisons:
        label = f"rtplay.{scenario.name}.compare"
        suite = _suite(root, label)
        for comparison in scenario.comparisons:
            missing = [n for n in (comparison.left, comparison.right) if n not in reports]
            if missing:  # an interrupted run: the variant never ran
                _case(suite, label, str(comparison), f"{comparison}: variant {', '.join(missing)} did not run",
                      "<not run>", str(comparison))
                continue
            values = {n: value_at(reports[n], comparison.path) for n in (comparison.left, comparison.right)}
            measured = ", ".join(f"{n}: {_measured(v)}" for n, v in values.items())
            bound = f"{comparison.left} {comparison.op} {comparison.factor:g} * {comparison.right}"
            _case(suite, label, str(comparison), comparison.check(dict(reports.items())), measured, bound)
        _count(suite)
    root.set("tests", str(sum(int(s.get("tests", "0")) for s in root)))
    root.set("failures", str(sum(int(s.get("failures", "0")) for s in root)))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
