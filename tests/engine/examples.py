"""The example servers of ``examples/`` as subprocesses on ephemeral ports, for target-mode tests."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Example:
    url: str
    log: Path
    process: subprocess.Popen[str]

    def published(self) -> dict[int, float]:
        """seq → send stamp, from the example's own log."""
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return {(m := json.loads(line))["seq"]: m["sent_ms"] for line in lines}


@contextmanager
def example(script: str, tmp_path: Path, *args: str) -> Iterator[Example]:
    """Run ``examples/<script>`` on a free port; stop it (and read its count) afterwards."""
    log = tmp_path / f"{script}.jsonl"
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / script), "--port", "0", "--log", str(log), *args],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("listening on "), first
        yield Example(first.split()[2], log, process)
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert f"published {len(Example('', log, process).published())} messages" in out
