"""Recorded runs (``fixtures/``): real ``rtplay run`` reports and their message logs.

See ``fixtures/README.md`` for the commands that made them.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Recorded:
    """One recorded run: its JSON report, its message log's records and the log as a file."""

    report: dict[str, Any]
    records: list[dict[str, Any]]
    log: Path


def recorded(name: str, tmp: Path) -> Recorded:
    """The run ``name`` (``run20``, ``run30``), its log unpacked into ``tmp``."""
    from rtplay.engine.message_log import read_log

    log = tmp / f"{name}.jsonl"
    log.write_bytes(gzip.decompress((FIXTURES / f"{name}.jsonl.gz").read_bytes()))
    report = json.loads((FIXTURES / f"{name}.json").read_text())
    return Recorded(report, read_log(log), log)
