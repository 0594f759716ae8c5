"""``rtplay run --log-messages FILE``: every arrival and connection change, one JSON line each.

With the log a user can recompute every figure of the report (``tests/engine/
test_message_log.py`` does, with the per-seq reference model). Lines (``at`` is seconds
since the session started, ``conn`` the client's connection count at that moment):

- ``{"ev": "msg", "tr", "ch", "seq", "lat", "b", "at", "conn"}`` an envelope arrived
  (``lat`` its latency in ms, ``b`` wire bytes accounted on that channel since the last line);
- ``up`` / ``down`` the client connected / lost its connection (or an attempt failed);
  ``retry`` it scheduled a retry; ``failed`` it gave up for good (every line has ``pub``,
  the hub's last seq at that moment);
- ``reset`` (``ch``, ``first``) the server said seqs before ``first`` are gone;
- ``live`` (``ch``, ``first``) an unreliable channel's new session starts at ``first``;
- ``bytes`` wire bytes not attached to an arrival; ``restart`` the counters were reset;
- ``fault_started`` / ``fault_ended`` (``id``, ``text``, ``scope``, ``published``); a fault
  the session asked for starts where its records opened, before the command left, and a
  one-shot one of those also says ``acted`` (the hub's last seq when the server acted);
- ``end``: what the figures were taken against (``published``, ``replay_from``, ``final``,
  and per transport its state, connection, ``subscribed_until`` and downtime cutoff).

Writing is one buffered ``write`` per line (no flush per message); the buffer is bounded by
:data:`LOG_BUFFER_BYTES`, and the file by :data:`MAX_LOG_LINES`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

#: Bytes buffered before a write to the file: 1000 msg/s × 6 transports × ~100 bytes a line
#: reaches the disk about once a tenth of a second, never once per message.
LOG_BUFFER_BYTES = 64 * 1024

#: Lines written at most (~100 bytes each: ~2 GB), so a forgotten session cannot fill a disk.
#: Past it one ``{"ev": "truncated"}`` line is written and logging stops.
MAX_LOG_LINES = 20_000_000


class MessageLog:
    """Appends records as JSON lines; times are made relative to ``origin``."""

    def __init__(self, path: Path, origin: float = 0.0) -> None:
        self.path = path
        self.origin = origin
        self.lines = 0
        self._file: IO[str] | None = path.open("w", buffering=LOG_BUFFER_BYTES, encoding="utf-8")

    def write(self, record: dict[str, object]) -> None:
        if self._file is None:
            return
        at = record.get("at")
        if isinstance(at, float):
            record["at"] = round(at - self.origin, 6)
        if self.lines >= MAX_LOG_LINES:
            self._file.write('{"ev": "truncated"}\n')
            log.warning("message log %s reached %d lines: stopped", self.path, MAX_LOG_LINES)
            self.close()
            return
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_log(path: Path) -> list[dict[str, object]]:
    """Every record of a message log, in order."""
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
