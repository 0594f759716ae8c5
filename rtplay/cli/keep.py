"""What a run can be kept as: ``rtplay report``, ``rtplay run --html`` and the logs they read.

The HTML itself is :mod:`rtplay.report`'s; this module finds the files, reads them and says
clearly what is wrong with one that cannot be used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rtplay.cli.scenario import Scenario


def run_log(args: argparse.Namespace, variant: str, scratch: Path) -> Path | None:
    """Where a run's message log goes: ``--log-messages`` (a variant's beside it, named after it),
    or a scratch file when only ``--html`` needs it."""
    if args.log_messages is not None:
        path: Path = args.log_messages
        return path if not variant else path.with_name(f"{path.stem}-{variant}{path.suffix}")
    return scratch / f"log-{variant or 'run'}.jsonl" if args.html is not None else None


def write_html(
    path: Path, reports: dict[str, dict[str, Any]], logs: dict[str, Path | None], scenario: Scenario
) -> None:
    """``--html``: the report of every run (and the comparisons), drawn from its log."""
    from rtplay.cli.headless import LEGEND
    from rtplay.engine.message_log import read_log
    from rtplay.report.render import build_report_html

    records = {name: read_log(log) for name, log in logs.items() if log is not None and log.exists()}
    comparisons = [(str(c), c.check(reports) if {c.left, c.right} <= set(reports) else "not run")
                   for c in scenario.comparisons]
    report = reports[""] if "" in reports else {"variants": reports}
    path.write_text(build_report_html(report, records, LEGEND, comparisons, f"rtplay run: {scenario.name}"))
    print(f"HTML report written to {path}", file=sys.stderr)


def _load_report(path: Path) -> dict[str, Any]:
    from rtplay.report.series import ReportInputError

    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportInputError(f"{path}: not a JSON report ({exc.msg}); give the file of "
                               "`rtplay run --json`, and its message log as --log") from None
    if not isinstance(report, dict):
        raise ReportInputError(f"{path}: the report must be a JSON object")
    return report


def cmd_report(args: argparse.Namespace) -> int:
    """``rtplay report [RUN.json] [--log LOG.jsonl] -o FILE``: with only a log (a recorded
    playground session), the figures are rebuilt from it."""
    from rtplay.cli.headless import LEGEND
    from rtplay.clients import CLIENT_CLASSES
    from rtplay.engine.message_log import read_log
    from rtplay.report.playback import Layout, report_from_log
    from rtplay.report.render import build_report_html

    if args.json is None and args.log is None:
        print("rtplay report: give a run's JSON report, its message log (--log), or both", file=sys.stderr)
        return 2
    try:
        records = read_log(args.log) if args.log is not None else []
        if args.json is not None:
            report, source = _load_report(args.json), args.json.name
        else:
            layouts = {n: Layout(c.channels, c.unreliable_channels) for n, c in CLIENT_CLASSES.items()}
            report, source = report_from_log(records, layouts), args.log.name
        text = build_report_html(report, {"": records} if records else {}, LEGEND, title=f"rtplay run: {source}")
        args.output.write_text(text, encoding="utf-8")
    except (OSError, ValueError) as exc:  # bad JSON, a bad log line, a log cut short: all ValueErrors
        print(f"rtplay report: {exc}", file=sys.stderr)
        return 2
    print(f"HTML report written to {args.output} ({len(text.encode()) / 1e6:.1f} MB)", file=sys.stderr)
    return 0
