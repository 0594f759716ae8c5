"""``rtplay run --log-messages FILE``: every arrival and connection change, one JSON line each.

With the log a user can recompute every figure of the report (``tests/engine/
test_message_log.py`` does, with the per-seq reference model). Lines (``at`` is seconds
since the log was opened, as the clients were created, so it never goes backwards; ``conn``
the client's connection count at that moment):

- ``{"ev": "start", "at", "published"}`` the run began: publishing, and the zero of the fault
  timeline and of the report's ``start_s``/``end_s`` (clients may have connected before it);

- ``{"ev": "msg", "tr", "ch", "seq", "lat", "b", "at", "conn"}`` an envelope arrived
  (``lat`` its latency in ms, ``b`` wire bytes accounted on that channel since the last line);
- ``up`` / ``down`` the client connected / lost its connection (or an attempt failed);
  ``retry`` it scheduled a retry; ``failed`` it gave up for good (every line has ``pub``,
  the hub's last seq at that moment);
- ``reset`` (``ch``, ``first``) the server said seqs before ``first`` are gone;
- ``live`` (``ch``, ``first``) an unreliable channel's new session starts at ``first``;
- ``bytes`` wire bytes not attached to an arrival; ``restart`` the counters were reset;
- ``start`` (``published``): the session started; ``at`` is 0 here, and what happened before
  (the first connections) has a negative ``at``;
- ``fault_started`` / ``fault_ended`` (``id``, ``text``, ``scope``, ``published``); a fault
  the session asked for starts where its records opened, before the command left, and its
  ``published`` is the hub's last seq its records count from;
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

#: Records held until the run's origin is known (the session started): the connections made
#: before publishing, a few per client. Past this many they are written against the log's
#: opening time, so the log stays bounded whatever a start-up does.
MAX_EARLY_RECORDS = 10_000

#: Lines written at most (~100 bytes each: ~2 GB), so a forgotten session cannot fill a disk.
#: Past it one ``{"ev": "truncated"}`` line is written and logging stops.
MAX_LOG_LINES = 20_000_000


class MessageLog:
    """Appends records as JSON lines; times are seconds since ``origin`` (the session start).

    Records written before the origin is set (:meth:`set_origin`) are held and written once it
    is, so every time is on one clock and never goes backwards: what happened before the start
    has a negative time.
    """

    def __init__(self, path: Path, origin: float | None = None) -> None:
        self.path = path
        self.origin = origin if origin is not None else 0.0
        self.lines = 0
        self._file: IO[str] | None = path.open("w", buffering=LOG_BUFFER_BYTES, encoding="utf-8")
        self._early: list[dict[str, object]] | None = [] if origin is None else None

    def set_origin(self, origin: float, start: dict[str, object] | None = None) -> None:
        """The run's zero: write what was held against it, then ``start`` (a ``start`` record)."""
        self.origin = origin
        early, self._early = self._early or [], None
        for record in early:
            self._write(record)
        if start is not None:
            self._write({"ev": "start", "at": origin, **start})

    def write(self, record: dict[str, object]) -> None:
        if self._early is not None:
            if len(self._early) < MAX_EARLY_RECORDS:
                self._early.append(record)
                return
            self.set_origin(self.origin)  # bounded: the rest is written against the opening time
        self._write(record)

    def _write(self, record: dict[str, object]) -> None:
        if self._file is None:
            return
        for key in ("at", "start"):
            value = record.get(key)
            if isinstance(value, float):
                record[key] = round(value - self.origin, 6)
        if self.lines >= MAX_LOG_LINES:
            self._file.write('{"ev": "truncated"}\n')
            log.warning("message log %s reached %d lines: stopped", self.path, MAX_LOG_LINES)
            self.close()
            return
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self.lines += 1

    def close(self) -> None:
        if self._early is not None:  # never started: what was held is written as it was
            self.set_origin(self.origin)
        if self._file is not None:
            self._file.close()
            self._file = None


class LogFormatError(ValueError):
    """A file that is not a message log: names the file and the line."""


def read_log(path: Path) -> list[dict[str, object]]:
    """Every record of a message log, in order; :class:`LogFormatError` on a line that is not one."""
    records: list[dict[str, object]] = []
    try:
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, start=1):
                if line.strip():
                    records.append(_record(path, number, line))
    except UnicodeDecodeError:
        raise LogFormatError(f"{path}: not a text message log (compressed? unpack it first)") from None
    return records


def _record(path: Path, number: int, line: str) -> dict[str, object]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise LogFormatError(f"{path}:{number}: not a message log line ({exc.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("ev"), str):
        raise LogFormatError(f"{path}:{number}: not a message log record (no \"ev\")")
    return record
