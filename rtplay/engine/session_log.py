"""The session's message log (``--log-messages``, ``--record``): a listener the session owns.

:class:`SessionRecorder` is given the open :class:`~rtplay.engine.message_log.MessageLog` and
one callable (the hub's last seq); the session hands it each client's audit records
(:meth:`SessionRecorder.audit`), subscribes it to its events (faults), and at the end gives it
the ``end`` record's state (:class:`EndState`). The log format is described in
:mod:`rtplay.engine.message_log` and is the same for a headless run and a playground session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rtplay.engine.message_log import MessageLog
from rtplay.model.events import Event, FaultEnded, FaultStarted
from rtplay.protocol.faults import ONE_SHOT


@dataclass(frozen=True)
class EndState:
    """What the figures were taken against, written as the log's last (``end``) record."""

    published: int
    replay_from: int
    final: bool
    at: float
    """The session clock (monotonic seconds) at the end."""
    clients: dict[str, dict[str, Any]]
    """Per transport: ``state``, ``connected``, ``subscribed_until``."""
    cutoff: float | None
    """When publishing stopped (monotonic seconds), or None."""


class SessionRecorder:
    """Writes one session's message log: audit records, fault records and the end record."""

    def __init__(self, log: MessageLog, published: Callable[[], int]) -> None:
        self.log = log
        self._published = published

    @property
    def path(self) -> str:
        """Where the log is written."""
        return str(self.log.path)

    def set_origin(self, origin: float) -> None:
        """Times in the log are seconds since ``origin`` (the moment the session started): what
        was written before it is written now against it, then a ``start`` record."""
        self.log.set_origin(origin, {"published": self._published()})

    def audit(self, record: dict[str, object]) -> None:
        """A client's arrival or connection change (a ``Client.audit`` callable)."""
        record["pub"] = self._published()  # what the recovery records saw at that moment
        self.log.write(record)

    def on_event(self, event: Event) -> None:
        """A session listener: faults starting and ending become ``fault_*`` records."""
        if not isinstance(event, FaultStarted | FaultEnded):
            return
        what = "fault_started" if isinstance(event, FaultStarted) else "fault_ended"
        fault = event.fault
        published = self._published()
        if isinstance(event, FaultStarted) and event.published is not None:
            published = event.published  # where its recovery records count from
        self.log.write(
            {"ev": what, "id": fault.id, "text": fault.describe(), "scope": fault.scope,
             "one_shot": fault.kind in ONE_SHOT, "at": event.at, "published": published}
        )

    def close(self, end: EndState) -> None:
        """Write the ``end`` record and close the file."""
        cutoff = None if end.cutoff is None else round(end.cutoff - self.log.origin, 6)
        self.log.write({
            "ev": "end", "published": end.published, "replay_from": end.replay_from,
            "final": end.final, "at": end.at, "clients": end.clients, "cutoff": cutoff,
        })
        self.log.close()
