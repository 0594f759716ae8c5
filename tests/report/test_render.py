"""The HTML of variants, crowds and browser rows (what the Chromium test's run does not have)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from rtplay.report.render import build_report_html
from tests.report.conftest import recorded


def chart_titles(html: str) -> list[str]:
    return re.findall(r'"title":\{"text":"([^"]+)"', html)


def with_crowd(report: dict[str, Any], policy: str, peak: float) -> dict[str, Any]:
    out = copy.deepcopy(report)
    out["transports"]["ws"]["crowd"] = {
        "clients": 100, "policy": policy, "peak_attempts_per_s": peak,
        "attempts_per_s": [[0.0, 2.0], [5.0, peak], [5.5, 10.0]], "connects_per_s": [[0.0, 2.0], [6.0, 90.0]],
    }
    out["server_load"] = {
        "bin_s": 0.1, "peak_accepts_per_s": peak, "peak_concurrent": 100,
        "accepts_per_s": [[1000.0 + i / 10, peak if i == 50 else 10.0] for i in range(3000)],  # 5 minutes of bins
        "concurrent": [[1000.0, 100]], "loop_lag_ms": [[1000.0, 2.5], [1005.0, 40.0]],
    }
    return out


def test_each_variant_has_its_section_and_the_crowds_share_one_chart(tmp_path: Path) -> None:
    run = recorded("run20", tmp_path)
    report = {"variants": {"full-jitter": with_crowd(run.report, "exponential:full", 40.0),
                           "no-jitter": with_crowd(run.report, "exponential:none", 100.0)}}
    html = build_report_html(report, {"full-jitter": run.records}, comparisons=[("ws.crowd.x: a <= 1 * b", None)])
    assert "<h2>variant full-jitter</h2>" in html and "<h2>variant no-jitter</h2>" in html
    titles = chart_titles(html)
    assert titles.count("one-way latency (log scale)") == 1  # only the variant with a log
    assert "crowds: attempts per second" in titles and "crowds: connects per second" in titles
    assert '"name":"full-jitter ws (exponential:full)"' in html and '"name":"no-jitter ws (exponential:none)"' in html
    comparison = html.split("<h2>comparison</h2>", 1)[1]
    rows = re.findall(r"<tr><td>(\w+)</td><td>([\w-]+)</td>", comparison)
    assert ("ws", "full-jitter") in rows and ("ws", "no-jitter") in rows and len(rows) == 12
    assert "<td>held</td>" in comparison
    # a: latency, arrivals; b has no log; then every variant's losses and health, the crowds, the load
    assert html.count("Plotly.newPlot(") == 7
    assert "the server's load (100 ms bins, peaks kept)" in html
    losses = '"x":["full-jitter wt\\u002fdatagram","full-jitter rtc\\u002funreliable","no-jitter wt\\u002fdatagram"'
    assert losses in html  # every variant's losses on one chart (plotly escapes the slash)
    assert len(re.findall(r"plotly\.js v\d", html)) == 1  # plotly.js embedded once for all of them


def test_the_browsers_rows_stand_beside_rtplays(tmp_path: Path) -> None:
    report = copy.deepcopy(recorded("run20", tmp_path).report)
    report["browser"] = {"transports": {"sse": dict(report["transports"]["sse"], delivered=187)}}
    html = build_report_html(report)
    browser = html.split("the browser (headless Chromium on the page)", 1)[1]
    assert re.search(r"<tr><td>sse</td><td>open</td><td>187</td>", browser)
    assert "no message log given" in html and "one-way latency" not in html


def test_many_variants_with_logs_share_the_size_budget(tmp_path: Path) -> None:
    """Eight variants (the most a scenario may have), each with its 30 s log: still under 5 MB."""
    from rtplay.cli.variants import MAX_VARIANTS

    run = recorded("run30", tmp_path)
    names = [f"v{i}" for i in range(MAX_VARIANTS)]
    html = build_report_html({"variants": dict.fromkeys(names, run.report)}, dict.fromkeys(names, run.records))
    assert len(html.encode()) < 5_000_000
    assert html.count("one-way latency (log scale)") == MAX_VARIANTS
