"""The session's message log (``--log-messages``): audit records, faults and the end record.

A mixin of :class:`rtplay.engine.session.Session`, kept apart so the session's engine reads
without the bookkeeping of the log file.
"""

from __future__ import annotations

from rtplay.model.events import Event, FaultEnded, FaultStarted
from rtplay.protocol.faults import ONE_SHOT


class MessageLogMixin:
    """Message-log writing of :class:`~rtplay.engine.session.Session` (which provides
    ``message_log``, ``clients``, ``published``, ``server``, ``clock``, ``final`` and ``faults``)."""

    def _audit(self, record: dict[str, object]) -> None:
        if self.message_log is not None:
            record["pub"] = self.published  # what the recovery records saw at that moment
            self.message_log.write(record)

    def _log_fault(self, event: Event) -> None:
        if self.message_log is None or not isinstance(event, FaultStarted | FaultEnded):
            return
        what = "fault_started" if isinstance(event, FaultStarted) else "fault_ended"
        fault = event.fault
        one_shot = fault.kind in ONE_SHOT
        record: dict[str, object] = {"ev": what, "id": fault.id, "text": fault.describe(), "scope": fault.scope,
                                     "one_shot": one_shot, "at": event.at, "published": self.published}
        opened = self.faults.recovery.opened(fault.id) if isinstance(event, FaultStarted) else None
        if opened is not None:  # the session's own fault: its records opened before the command left
            record["at"], record["published"] = opened
            if one_shot:
                record["acted"] = self.published
        self.message_log.write(record)

    def close_message_log(self) -> None:
        """Write the ``end`` record (what the figures were taken against) and close the log."""
        if self.message_log is None:
            return
        for client in self.clients.values():
            client.flush_audit()
        stopped = self.publishing_stopped_at
        clients = {
            n: {"state": c.state.value, "connected": c.conn.connected, "subscribed_until": c.subscribed_until}
            for n, c in self.clients.items()
        }
        self.message_log.write({
            "ev": "end", "published": self.published, "replay_from": self.server.replay_from,
            "final": self.final(), "at": self.clock(), "clients": clients,
            "cutoff": None if stopped is None else round(stopped - self.message_log.origin, 6),
        })
        self.message_log.close()
        self.message_log = None
